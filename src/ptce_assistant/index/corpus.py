"""The read side of the index: a view of the live generation (chunks, vectors, BM25, manifest, texts), reopened
when another process flips the pointer."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ptce_assistant.chunking import Chunk
from ptce_assistant.config import Settings
from ptce_assistant.errors import IndexUnavailableError
from ptce_assistant.index.bm25 import LexicalIndex
from ptce_assistant.index.records import POINTER, Manifest, current_generation, read_generation
from ptce_assistant.index.vectors import VectorStore
from ptce_assistant.sentences import SentenceVectors

if TYPE_CHECKING:
    from ptce_assistant.embeddings import SentenceEmbeddings


@dataclass(frozen=True)
class IndexView:
    """One generation's parts, replaced as a whole when the index changes: a search never mixes two."""

    generation: str
    folder: Path
    manifest: Manifest
    chunks: list[Chunk]
    by_id: dict[str, Chunk]
    lexical: LexicalIndex
    vectors: VectorStore
    sentences: SentenceVectors


class CorpusIndex:
    """A read-only view of the current generation: chunks, vectors, BM25, manifest, document texts."""

    def __init__(self, settings: Settings, embedder: SentenceEmbeddings | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._lock = threading.Lock()
        self._pointer_stamp: tuple[float, str] | None = None
        self.view = self._open()

    @property
    def root(self) -> Path:
        """The index folder."""
        return self.settings.index_dir

    def _open(self) -> IndexView:
        stamp = _pointer_stamp(self.root)
        generation = current_generation(self.root)
        if generation is None:
            raise IndexUnavailableError(f"aucun index dans {self.root} : lancez « ptce ingest » pour indexer le corpus")
        folder = self.root / generation
        try:
            manifest, chunks = read_generation(folder)
            lexical = LexicalIndex.load(folder / "lexical")
            vectors = VectorStore(self.settings, folder, generation, self._embedder, create=False)
        except (OSError, ValueError) as exc:
            raise IndexUnavailableError(
                f"index illisible ({folder}: {exc}) : relancez « ptce ingest --rebuild »"
            ) from None
        self._pointer_stamp = stamp
        sentences = SentenceVectors(folder, {doc_id: record.sha256 for doc_id, record in manifest.documents.items()})
        by_id = {c.chunk_id: c for c in chunks}
        return IndexView(generation, folder, manifest, chunks, by_id, lexical, vectors, sentences)

    def refresh(self) -> IndexView:
        """The current generation's view, reopened first if another process flipped the pointer."""
        if _pointer_stamp(self.root) != self._pointer_stamp:
            with self._lock:
                if _pointer_stamp(self.root) != self._pointer_stamp:
                    self.view = self._open()  # one assignment: readers see the old view or the new one
        return self.view

    @property
    def generation(self) -> str:
        """The generation folder's name."""
        return self.view.generation

    @property
    def manifest(self) -> Manifest:
        """Documents and how they were embedded."""
        return self.view.manifest

    @property
    def chunks(self) -> list[Chunk]:
        """Every chunk, by document then position."""
        return self.view.chunks

    @property
    def by_id(self) -> dict[str, Chunk]:
        """Chunks by id."""
        return self.view.by_id

    @property
    def lexical(self) -> LexicalIndex:
        """The French BM25 index."""
        return self.view.lexical

    @property
    def vectors(self) -> VectorStore:
        """The Chroma collection."""
        return self.view.vectors

    @property
    def sentences(self) -> SentenceVectors:
        """The sentence vectors of every passage."""
        return self.view.sentences

    def document_text(self, doc_id: str) -> str:
        """The extracted text that chunk and citation offsets refer to."""
        view = self.view
        record = view.manifest.documents[doc_id]
        return (view.folder / "texts" / f"{record.sha256}.txt").read_text(encoding="utf-8")

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """A document's chunks in reading order."""
        return [c for c in self.chunks if c.doc_id == doc_id]


def _pointer_stamp(root: Path) -> tuple[float, str] | None:
    try:
        pointer = root / POINTER
        return (pointer.stat().st_mtime, pointer.read_text(encoding="utf-8"))
    except OSError:
        return None
