"""Retrieval baselines the assistant is compared with: BM25 alone, dense alone, a naive LangChain RAG.

Baselines see the question as the user typed it (no conversation rewrite, no thesaurus expansion,
no list pinning) and produce ranked passages only: they are scored on retrieval metrics.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel

if TYPE_CHECKING:
    from ptce_assistant.assistant import Assistant

DEPTH = 10
NAIVE_CHUNK_SIZE, NAIVE_CHUNK_OVERLAP, NAIVE_TOP_K = 1000, 200, 4


def word_overlap_sentence(chunk_text: str, query: str) -> tuple[int, int]:
    """The sentence selection of sessions 1-4, kept as a baseline: the span of the passage's sentences
    sharing (nearly) the most terms with the query."""
    from ptce_assistant.lexical import french_terms
    from ptce_assistant.text import sentence_spans

    terms = set(french_terms(query))
    spans = sentence_spans(chunk_text)
    if not spans:
        return 0, len(chunk_text)
    scores = [len(terms & set(french_terms(chunk_text[s:e]))) for s, e in spans]
    best = max(scores)
    chosen = [span for span, score in zip(spans, scores, strict=True) if score >= max(best - 1, 1)] or spans[:1]
    return chosen[0][0], chosen[-1][1]


class Passage(BaseModel):
    """One ranked passage of a baseline: an id (a chunk id, or a naive chunk's position) and its text."""

    passage_id: str
    text: str


class Baseline(Protocol):
    """A retriever the assistant is compared with."""

    name: str
    description: str

    def rank(self, question: str) -> list[Passage]:
        """Passages for the question, best first."""
        ...


class LexicalBaseline:
    """The project's French BM25 index over the same chunks, alone."""

    name = "bm25"
    description = "BM25 alone: the project's French LexicalIndex over the same chunks, top 10."

    def __init__(self, assistant: Assistant) -> None:
        self._index = assistant.index

    def rank(self, question: str) -> list[Passage]:
        """The top BM25 chunks."""
        found = self._index.lexical.search(question, DEPTH)
        return [Passage(passage_id=cid, text=self._index.by_id[cid].text) for cid, _ in found]


class DenseBaseline:
    """The same e5 vectors in the project's VectorStore, alone."""

    name = "dense"
    description = "Dense alone: the same e5 vectors in the project's Chroma VectorStore, top 10."

    def __init__(self, assistant: Assistant) -> None:
        self._index = assistant.index
        self._embedder = assistant.embedder

    def rank(self, question: str) -> list[Passage]:
        """The nearest chunks by cosine."""
        found = self._index.vectors.query(self._embedder.encode_query(question), DEPTH)
        return [Passage(passage_id=cid, text=self._index.by_id[cid].text) for cid, _ in found]


class NaiveLangChainBaseline:
    """The tutorial pipeline: fixed-size character chunks, Chroma, top 4, the same embedder."""

    name = "naive"
    description = (
        f"Naive LangChain: RecursiveCharacterTextSplitter(chunk_size={NAIVE_CHUNK_SIZE}, "
        f"chunk_overlap={NAIVE_CHUNK_OVERLAP}) over the documents' text, in-memory langchain_chroma.Chroma "
        f"(cosine) with the same e5 embedder, top {NAIVE_TOP_K}."
    )

    def __init__(self, assistant: Assistant) -> None:
        from chromadb.config import Settings as ChromaSettings
        from langchain_chroma import Chroma
        from langchain_core.documents import Document
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        index = assistant.index
        splitter = RecursiveCharacterTextSplitter(chunk_size=NAIVE_CHUNK_SIZE, chunk_overlap=NAIVE_CHUNK_OVERLAP)
        documents = [
            Document(page_content=index.document_text(doc_id), metadata={"doc_id": doc_id})
            for doc_id in sorted(index.manifest.documents)
        ]
        pieces = splitter.split_documents(documents)
        for position, piece in enumerate(pieces):
            piece.metadata["passage_id"] = f"{piece.metadata['doc_id']}@{position}"
        # A fresh in-memory collection per run: nothing is written to disk.
        self._store = Chroma(
            collection_name=f"naive-{uuid.uuid4().hex[:12]}",
            embedding_function=assistant.embedder,
            collection_metadata={"hnsw:space": "cosine"},
            client_settings=ChromaSettings(anonymized_telemetry=False, is_persistent=False),
        )
        if pieces:
            self._store.add_documents(pieces)
        self.chunk_count = len(pieces)

    def rank(self, question: str) -> list[Passage]:
        """The top 4 fixed-size chunks by cosine."""
        found = self._store.similarity_search(question, k=NAIVE_TOP_K) if self.chunk_count else []
        return [Passage(passage_id=str(doc.metadata["passage_id"]), text=doc.page_content) for doc in found]

    def close(self) -> None:
        """Drop the in-memory collection."""
        self._store.delete_collection()


def build_baselines(assistant: Assistant) -> Sequence[Baseline]:
    """The three baselines over the assistant's current index."""
    return [LexicalBaseline(assistant), DenseBaseline(assistant), NaiveLangChainBaseline(assistant)]
