"""Sentence evidence: every sentence of the top passages scored for how well it answers the question.

A sentence's features are its own cosine with the question (its vector was stored at ingestion),
the IDF-weighted share of the question's terms it contains, and its passage's place in the
ranking. The calibrated sentence model turns them into a probability of carrying the answer; the
gate reads the best one, the composer quotes the ones that pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence, Set

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from ptce_assistant.answering.calibration import LinearModel
from ptce_assistant.lexical import QUESTION_WORDS, french_terms
from ptce_assistant.retrieval import Hit
from ptce_assistant.sentences import SentenceVectors
from ptce_assistant.text import sentence_spans, words

# Sentences of this many top passages compete for the quote (hit@3 is 0.71-0.98 across splits).
CANDIDATE_PASSAGES = 4
SENTENCE_FEATURES = ("similarity", "similarity_gap", "overlap", "passage_reciprocal_rank", "passage_similarity")

Idf = Callable[[str], float]


class SentenceCandidate(BaseModel):
    """One sentence of a top passage, what it was scored on, and its probability of answering."""

    model_config = ConfigDict(frozen=True)

    hit: Hit
    start: int
    end: int
    position: int
    similarity: float
    overlap: float
    probability: float = 0.0

    @property
    def text(self) -> str:
        """The sentence, verbatim."""
        return self.hit.chunk.text[self.start : self.end]

    def features(self, best_similarity: float) -> dict[str, float]:
        """The sentence model's inputs; `best_similarity` is the best cosine among all candidates."""
        return {
            "similarity": self.similarity,
            "similarity_gap": best_similarity - self.similarity,
            "overlap": self.overlap,
            "passage_reciprocal_rank": 1.0 / self.hit.rank,
            "passage_similarity": self.hit.dense_similarity or 0.0,
        }


def question_terms(query: str) -> list[str]:
    """The analysed terms a question asks about (question words left out), each once."""
    return list(dict.fromkeys(french_terms(" ".join(w for w in words(query) if w not in QUESTION_WORDS))))


def weighted_share(terms: Sequence[str], present: Set[str], idf: Idf) -> float:
    """IDF-weighted share of `terms` found in `present` (rare words count more than common ones)."""
    weights = [idf(t) for t in terms]
    total = sum(weights)
    return sum(w for t, w in zip(terms, weights, strict=True) if t in present) / total if total else 0.0


def sentence_candidates(
    query_vector: npt.NDArray[np.float32],
    terms: Sequence[str],
    hits: Sequence[Hit],
    sentences: SentenceVectors,
    idf: Idf,
    model: LinearModel,
) -> list[SentenceCandidate]:
    """The sentences of the top passages, best first, each with its probability of answering."""
    raw: list[SentenceCandidate] = []
    for hit in hits[:CANDIDATE_PASSAGES]:
        stored = sentences.of_chunk(hit.chunk)
        if stored is None:  # an index without sentence vectors: the passage's own cosine stands in
            spans = sentence_spans(hit.chunk.text) or [(0, len(hit.chunk.text))]
            cosines = [hit.dense_similarity or 0.0] * len(spans)
        else:
            spans, vectors = stored
            cosines = [float(v) for v in vectors @ query_vector]
        for position, ((start, end), cosine) in enumerate(zip(spans, cosines, strict=True)):
            present = set(french_terms(hit.chunk.text[start:end]))
            overlap = weighted_share(terms, present, idf)
            raw.append(
                SentenceCandidate(hit=hit, start=start, end=end, position=position, similarity=cosine, overlap=overlap)
            )
    best = max((c.similarity for c in raw), default=0.0)
    scored = [c.model_copy(update={"probability": model.probability(c.features(best))}) for c in raw]
    return sorted(scored, key=lambda c: (-c.probability, c.hit.rank, c.start))
