"""The index's records: the manifest of a generation (its documents by content hash, how they were embedded),
the outcome of an ingestion, and the `CURRENT` pointer that names the live generation."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from ptce_assistant.chunking import CHUNKER_VERSION, Chunk

POINTER = "CURRENT"
FORMAT_VERSION = 1


class DocumentRecord(BaseModel):
    """What the manifest remembers of an ingested document."""

    doc_id: str
    path: str
    title: str
    sha256: str
    kind: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    n_chunks: int
    n_pages: int = 0
    ingested_at: str


class Manifest(BaseModel):
    """The index's table of contents: documents by content hash, and how they were embedded."""

    format: int = FORMAT_VERSION
    generation: str
    embedder: str
    chunker: str = CHUNKER_VERSION
    ef_search: int | None = None  # the HNSW search breadth its collection was given (None: before it was set)
    created_at: str
    documents: dict[str, DocumentRecord] = Field(default_factory=dict)

    @property
    def corpus_hash(self) -> str:
        """One hash for the whole indexed corpus (recorded with every answer)."""
        joined = "\n".join(f"{k}:{v.sha256}" for k, v in sorted(self.documents.items()))
        return hashlib.sha256(joined.encode()).hexdigest()[:16]


Status = Literal["added", "updated", "unchanged", "removed", "rejected"]


class DocumentOutcome(BaseModel):
    """The result of one file in an ingestion run."""

    path: str
    doc_id: str | None = None
    status: Status
    chunks: int = 0
    error: str | None = None


class IngestReport(BaseModel):
    """Per-document results and throughput of an ingestion run."""

    outcomes: list[DocumentOutcome] = Field(default_factory=list)
    chunks_embedded: int = 0
    sentences_embedded: int = 0
    chunks_total: int = 0
    seconds: float = 0.0
    generation: str | None = None

    @property
    def rejected(self) -> list[DocumentOutcome]:
        """Files that could not be ingested."""
        return [o for o in self.outcomes if o.status == "rejected"]

    @property
    def changed(self) -> list[DocumentOutcome]:
        """Documents added, updated or removed by the run."""
        return [o for o in self.outcomes if o.status in ("added", "updated", "removed")]

    @property
    def chunks_per_second(self) -> float:
        """Embedding throughput of the run."""
        return self.chunks_embedded / self.seconds if self.seconds else 0.0


ProgressCallback = Callable[[str, int, int], None]


def read_generation(folder: Path) -> tuple[Manifest, list[Chunk]]:
    """A generation's manifest and chunks (raises OSError or ValueError when unreadable)."""
    manifest = Manifest.model_validate_json((folder / "manifest.json").read_text(encoding="utf-8"))
    lines = (folder / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
    return manifest, [Chunk.model_validate_json(line) for line in lines if line]


def current_generation(root: Path) -> str | None:
    """The generation folder the pointer names, if the index exists."""
    try:
        data = json.loads((root / POINTER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    generation = data.get("generation")
    return generation if isinstance(generation, str) and (root / generation).is_dir() else None
