"""Sentence vectors: every passage cut into sentences at ingestion, each sentence embedded once.

The quoted sentence is chosen by its own similarity to the question (answering/evidence.py), so
each index generation keeps one table per document: the sentences' offsets in the document text
and their unit vectors. Tables are named by the document's content hash: an unchanged document's
table is copied into the next generation, never re-embedded.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ptce_assistant.chunking import Chunk
from ptce_assistant.text import sentence_spans

FOLDER = "sentences"


@dataclass(frozen=True)
class SentenceTable:
    """One document's sentences: start and end offsets in its text, and one unit vector each."""

    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]
    vectors: npt.NDArray[np.float32]

    def save(self, path: Path) -> None:
        """Write the table as one .npz file."""
        with open(path, "wb") as handle:
            np.savez(handle, starts=self.starts, ends=self.ends, vectors=self.vectors)

    @classmethod
    def load(cls, path: Path) -> SentenceTable:
        """Read a table written by `save` (OSError or ValueError when unreadable)."""
        with np.load(path) as data:
            return cls(data["starts"], data["ends"], data["vectors"].astype(np.float32, copy=False))


def document_sentences(chunks: Sequence[Chunk]) -> list[tuple[int, int, str]]:
    """(start, end, text) of every sentence of a document's chunks, offsets in the document's text."""
    return [(c.start + s, c.start + e, c.text[s:e]) for c in chunks for s, e in sentence_spans(c.text)]


def table_path(generation_dir: Path, sha256: str) -> Path:
    """Where a generation keeps the sentence table of the document with this content hash."""
    return generation_dir / FOLDER / f"{sha256}.npz"


class SentenceVectors:
    """The sentence tables of one generation, each read on first use (a large library is not loaded whole)."""

    def __init__(self, generation_dir: Path, hashes: dict[str, str]) -> None:
        self._folder = generation_dir
        self._hashes = hashes  # doc_id -> content hash
        self._tables: dict[str, SentenceTable | None] = {}
        self._lock = threading.Lock()

    def _table(self, doc_id: str) -> SentenceTable | None:
        if doc_id not in self._tables:
            sha = self._hashes.get(doc_id)
            table: SentenceTable | None = None
            if sha is not None:
                try:
                    table = SentenceTable.load(table_path(self._folder, sha))
                except (OSError, ValueError, KeyError):
                    table = None  # an index built before sentence vectors: passages are scored whole
            with self._lock:
                self._tables[doc_id] = table
        return self._tables[doc_id]

    def of_chunk(self, chunk: Chunk) -> tuple[list[tuple[int, int]], npt.NDArray[np.float32]] | None:
        """The chunk's sentences as (start, end) offsets in chunk.text, with their vectors; None if unknown."""
        table = self._table(chunk.doc_id)
        if table is None:
            return None
        first = int(np.searchsorted(table.starts, chunk.start, side="left"))
        last = int(np.searchsorted(table.starts, chunk.end, side="left"))
        if last <= first or int(table.ends[last - 1]) > chunk.end:
            return None
        spans = [
            (int(s) - chunk.start, int(e) - chunk.start)
            for s, e in zip(table.starts[first:last], table.ends[first:last], strict=True)
        ]
        return spans, table.vectors[first:last]
