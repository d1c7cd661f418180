"""Hybrid retrieval: dense (e5) and lexical (French BM25) candidates fused by reciprocal rank."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ptce_assistant.chunking import Chunk
from ptce_assistant.config import Settings
from ptce_assistant.thesaurus import expansions

if TYPE_CHECKING:
    from ptce_assistant.embeddings import SentenceEmbeddings
    from ptce_assistant.index import CorpusIndex
    from ptce_assistant.reranking import Reranker


class Hit(BaseModel):
    """One retrieved chunk with its fused rank and the ranks each retriever gave it."""

    rank: int
    chunk: Chunk
    score: float
    dense_rank: int | None = None
    lexical_rank: int | None = None
    dense_similarity: float | None = None
    lexical_score: float | None = None
    rerank_score: float | None = None

    def record(self) -> dict[str, Any]:
        """The hit as `ptce search --json` documents it: its rank, its passage and its scores."""
        return {
            "rank": self.rank,
            **self.chunk.model_dump(exclude={"list_position", "list_length"}),
            "score": round(self.score, 6),
            "dense_rank": self.dense_rank,
            "lexical_rank": self.lexical_rank,
            **({"rerank_score": round(self.rerank_score, 6)} if self.rerank_score is not None else {}),
        }


class SearchResult(BaseModel):
    """Ranked hits for one query, with the time each stage took (thesaurus expansion, question embedding,
    dense search, BM25, fusion, optional rerank, and the whole search), in milliseconds."""

    query: str
    hits: list[Hit]
    timings_ms: dict[str, float]


def expanded_query(query: str, thesaurus: bool = True) -> str:
    """The query with the thesaurus's corpus words for everyday ones ("mairie" -> collectivités), unless off."""
    return f"{query} {expansions(query) if thesaurus else ''}".strip()


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = 60) -> list[tuple[str, float]]:
    """Fuse ranked id lists: score(id) = sum over lists of 1 / (k + rank)."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


class HybridSearcher:
    """Dense e5 search and French BM25 over one CorpusIndex, fused by reciprocal rank, optionally reranked."""

    def __init__(
        self, index: CorpusIndex, embedder: SentenceEmbeddings, settings: Settings, reranker: Reranker | None = None
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.reranker = reranker

    def search(self, query: str, k: int | None = None, expanded: str | None = None) -> SearchResult:
        """The `k` best chunks for `query`, each with its dense and lexical rank.

        `expanded` is the query with the thesaurus's words when the caller has analysed it already (the
        facade's `Question`); without it the query is expanded here.
        """
        k = k or self.settings.k
        view = self.index.refresh()  # vectors, BM25 and chunks of one generation, even if another lands meanwhile
        n = max(self.settings.candidates, k)
        t0 = time.perf_counter()
        if expanded is None:
            expanded = expanded_query(query, self.settings.thesaurus)
        te = time.perf_counter()
        vector = self.embedder.encode_query(expanded)
        t1 = time.perf_counter()
        dense = view.vectors.query(vector, n)
        t2 = time.perf_counter()
        lexical = view.lexical.search(expanded, n)
        t3 = time.perf_counter()
        fused = reciprocal_rank_fusion([[cid for cid, _ in dense], [cid for cid, _ in lexical]], self.settings.rrf_k)
        dense_info = {cid: (rank, sim) for rank, (cid, sim) in enumerate(dense, start=1)}
        lexical_info = {cid: (rank, score) for rank, (cid, score) in enumerate(lexical, start=1)}
        keep = max(k, self.settings.rerank_candidates) if self.reranker else k
        hits: list[Hit] = []
        for cid, score in fused:
            chunk = view.by_id.get(cid)
            if chunk is None:
                continue  # cannot happen within one generation; kept as a guard against a damaged index
            d_rank, d_sim = dense_info.get(cid, (None, None))
            l_rank, l_score = lexical_info.get(cid, (None, None))
            hits.append(
                Hit(
                    rank=len(hits) + 1,
                    chunk=chunk,
                    score=score,
                    dense_rank=d_rank,
                    lexical_rank=l_rank,
                    dense_similarity=d_sim,
                    lexical_score=l_score,
                )
            )
            if len(hits) == keep:
                break
        t4 = time.perf_counter()
        if self.reranker:
            hits = self._rerank(query, hits)[:k]
        timings = {
            "expand": (te - t0) * 1000,
            "embed": (t1 - te) * 1000,
            "dense": (t2 - t1) * 1000,
            "bm25": (t3 - t2) * 1000,
            "fusion": (t4 - t3) * 1000,
            **({"rerank": (time.perf_counter() - t4) * 1000} if self.reranker else {}),
            "search": (time.perf_counter() - t0) * 1000,
        }
        return SearchResult(query=query, hits=hits, timings_ms=timings)

    def _rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        """Hits re-ordered by the cross-encoder's score (ties keep the fused order), ranks renumbered."""
        assert self.reranker is not None
        scores = self.reranker.scores(query, [hit.chunk.indexed_text() for hit in hits])
        ordered = sorted(zip(hits, scores, strict=True), key=lambda pair: -pair[1])
        return [
            hit.model_copy(update={"rank": rank, "rerank_score": score})
            for rank, (hit, score) in enumerate(ordered, start=1)
        ]
