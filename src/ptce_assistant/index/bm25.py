"""The BM25 adapter: a French lexical index of a generation's chunks (bm25s), saved in its folder."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ptce_assistant.chunking import Chunk
from ptce_assistant.lexical import bm25_idf, french_terms


class LexicalIndex:
    """BM25 over French terms of each chunk's breadcrumb and text (bm25s)."""

    def __init__(self, retriever: Any, chunk_ids: list[str]) -> None:
        self._retriever = retriever
        self._chunk_ids = chunk_ids
        self._vocab: dict[str, int] = dict(getattr(retriever, "vocab_dict", {}) or {})
        self.terms: frozenset[str] = frozenset(term for term in self._vocab if term)

    def idf(self, term: str) -> float:
        """BM25 inverse document frequency of an analysed term (its column's length in the BM25 matrix)."""
        token = self._vocab.get(term)
        frequency = 0
        if token is not None and self._retriever is not None:
            indptr = self._retriever.scores["indptr"]
            frequency = int(indptr[token + 1] - indptr[token])
        return bm25_idf(frequency, len(self._chunk_ids))

    @classmethod
    def build(cls, chunks: Sequence[Chunk]) -> LexicalIndex:
        """Index the chunks' analysed text."""
        import bm25s

        retriever = bm25s.BM25()
        if chunks:
            retriever.index([french_terms(c.indexed_text()) or [""] for c in chunks], show_progress=False)
        return cls(retriever, [c.chunk_id for c in chunks])

    def save(self, folder: Path) -> None:
        """Persist the BM25 matrices and the chunk order."""
        folder.mkdir(parents=True, exist_ok=True)
        if self._chunk_ids:
            self._retriever.save(str(folder), show_progress=False)
        (folder / "chunk_ids.json").write_text(json.dumps(self._chunk_ids), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        """Open a saved index (memory-mapped)."""
        import bm25s

        chunk_ids = json.loads((folder / "chunk_ids.json").read_text(encoding="utf-8"))
        retriever = bm25s.BM25.load(str(folder), mmap=True, show_progress=False) if chunk_ids else None
        return cls(retriever, chunk_ids)

    def search(self, query: str, n: int) -> list[tuple[str, float]]:
        """(chunk_id, BM25 score) of the best `n` chunks with a positive score."""
        terms = [t for t in french_terms(query) if t in self._vocab]
        if not terms or not self._chunk_ids:
            return []
        ids, scores = self._retriever.retrieve([terms], k=min(n, len(self._chunk_ids)), show_progress=False)
        return [(self._chunk_ids[int(i)], float(s)) for i, s in zip(ids[0], scores[0], strict=True) if float(s) > 0]
