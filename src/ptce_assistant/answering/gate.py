"""The answerability gate: decided from retrieval evidence, before anything is composed.

The small local LLM invents answers when passages are near but not on point, so whether to answer
is never left to it. A logistic model over the evidence below decides; it is fitted on eval cases
by `ptce eval calibrate` and shipped as data (answering/calibration.py, README "Abstention").
"""

from __future__ import annotations

import re
from collections.abc import Sequence, Set
from typing import Literal

from pydantic import BaseModel, Field

from ptce_assistant.answering.answer_types import answer_types, unknown_capitalised
from ptce_assistant.answering.calibration import LinearModel
from ptce_assistant.answering.evidence import Idf, SentenceCandidate, weighted_share
from ptce_assistant.answering.question import Question
from ptce_assistant.lexical import french_terms
from ptce_assistant.retrieval import Hit
from ptce_assistant.text import strip_accents
from ptce_assistant.wordlists import alternatives

Refusal = Literal["injection", "chitchat", "off_topic", "empty"]

# The refused phrasings and their provenance are data: src/ptce_assistant/data/refusals.toml.
_INJECTION = re.compile(alternatives("injection"), re.IGNORECASE)
_CHITCHAT = re.compile(rf"^\s*({alternatives('chitchat')})\b[\s!?.,]*(.{{0,40}})$", re.IGNORECASE)
_OFF_TOPIC = re.compile(rf"\b({alternatives('off_topic')})\b", re.IGNORECASE)


class Evidence(BaseModel):
    """What retrieval says about a question: the features the gate decides on."""

    top_dense: float = Field(description="Best e5 cosine between the question and a passage.")
    dense_margin: float = Field(description="Best passage cosine minus the second best.")
    best_sentence: float = Field(description="Best cosine between the question and one sentence of a top passage.")
    coverage: float = Field(description="Share of the question's terms found in the top 3 passages.")
    unknown_share: float = Field(description="IDF-weighted share of the question's terms absent from the corpus.")
    unknown_terms: list[str]
    query_terms: int
    answer_type: str | None = Field(default=None, description='What the question asks for: "amount", "place+date"…')
    answer_types_missing: list[str] = Field(default_factory=list, description="Asked types the passages lack.")
    answer_type_missing: float = Field(default=0.0, description="Share of the asked types the passages lack.")
    unknown_names: list[str] = Field(default_factory=list, description="Names in the question the corpus never uses.")

    def features(self) -> dict[str, float]:
        """The gate model's inputs."""
        return {
            "top_dense": self.top_dense,
            "dense_margin": self.dense_margin,
            "best_sentence": self.best_sentence,
            "coverage": self.coverage,
            "unknown_share": self.unknown_share,
            "answer_type_missing": self.answer_type_missing,
            "unknown_name": float(bool(self.unknown_names)),
        }


GATE_FEATURES = (
    "top_dense",
    "dense_margin",
    "best_sentence",
    "coverage",
    "unknown_share",
    "answer_type_missing",
    "unknown_name",
)
# The direction each feature may weigh in: closer passages and more terms covered never mean "no";
# the margin between the first two passages is left free.
GATE_SIGNS = {
    "top_dense": 1,
    "best_sentence": 1,
    "coverage": 1,
    "unknown_share": -1,
    "answer_type_missing": -1,
    "unknown_name": -1,
}


class GateDecision(BaseModel):
    """Answer or abstain, with a confidence and the reason in words."""

    answerable: bool
    confidence: float
    reason: str
    refusal: Refusal | None = None
    evidence: Evidence | None = None


def refusal_kind(question: str) -> Refusal | None:
    """Requests the corpus can never answer, recognised before retrieval."""
    plain = strip_accents(question)
    if not french_terms(plain) and not re.search(r"\w", plain):
        return "empty"
    if _INJECTION.search(plain):
        return "injection"
    if _CHITCHAT.match(plain):
        return "chitchat"
    if _OFF_TOPIC.search(plain):
        return "off_topic"
    return None


def evidence_for(
    question: Question,
    hits: Sequence[Hit],
    candidates: Sequence[SentenceCandidate],
    vocabulary: Set[str],
    idf: Idf,
) -> Evidence:
    """The gate's features for a question, its ranked passages and their scored sentences.

    What is asked is read from the user's own words: a follow-up's standalone query also carries the
    previous turn's question, whose answer type was answered then.
    """
    terms = question.query_terms
    top = hits[:3]
    covered: set[str] = set()
    for hit in top:
        covered |= set(terms) & set(french_terms(hit.chunk.indexed_text()))
    unknown = sorted(t for t in terms if t not in vocabulary)
    similarities = sorted((h.dense_similarity or 0.0 for h in hits), reverse=True) or [0.0]
    # A heading is part of what a passage says ("8 leviers au développement des PTCE ont été identifiés").
    passages = [f"{h.chunk.breadcrumb[-1]}\n{h.chunk.text}" if h.chunk.breadcrumb else h.chunk.text for h in top]
    types = answer_types(question.text, passages, vocabulary)
    return Evidence(
        top_dense=similarities[0],
        dense_margin=similarities[0] - (similarities[1] if len(similarities) > 1 else 0.0),
        best_sentence=max((c.similarity for c in candidates), default=0.0),
        coverage=len(covered) / len(terms) if terms else 0.0,
        # The corpus vocabulary is French: an English question's words say nothing about coverage.
        unknown_share=weighted_share(terms, set(unknown), idf) if question.lang == "fr" else 0.0,
        unknown_terms=unknown,
        query_terms=len(terms),
        answer_type=types.label,
        answer_types_missing=list(types.missing),
        answer_type_missing=types.missing_share,
        unknown_names=unknown_names(question.standalone.text, vocabulary),
    )


def unknown_names(query: str, vocabulary: Set[str]) -> list[str]:
    """Names the question uses that the corpus never does ("Bretagne", "CFE"): it asks about something else.

    Added after the issue's example "Quelles coopératives agricoles de Bretagne font partie d'un PTCE ?",
    answered with unrelated quotes; the gate model learns its weight from the eval cases. An institution
    written with a capital by convention ("l'État") is not a name.
    """
    return unknown_capitalised(query, vocabulary, institutions=False)


def decide(evidence: Evidence, model: LinearModel, pinned: bool = False) -> GateDecision:
    """Whether the corpus answers, by the calibrated gate model; the reason is shown to evaluators."""
    confidence = round(model.probability(evidence.features()), 3)
    if pinned:
        return GateDecision(
            answerable=True,
            confidence=max(confidence, 0.8),
            reason="list item named by the conversation",
            evidence=evidence,
        )
    if confidence >= model.threshold:
        return GateDecision(answerable=True, confidence=confidence, evidence=evidence, reason="supported by retrieval")
    return GateDecision(answerable=False, confidence=confidence, evidence=evidence, reason=_weakest(evidence))


def refused(refusal: Refusal) -> GateDecision:
    """The decision for a request the corpus can never answer (injection, chitchat, off-topic, empty)."""
    return GateDecision(answerable=False, confidence=0.0, reason=f"refused: {refusal}", refusal=refusal)


def _weakest(evidence: Evidence) -> str:
    """Why the gate abstained, in the words of its strongest signal."""
    if evidence.answer_types_missing:
        asked = " and ".join(f"an {t}" if t[0] in "aeiou" else f"a {t}" for t in evidence.answer_types_missing)
        return f"asks for {asked} the passages do not contain"
    if evidence.unknown_names:
        return f"names what the corpus never mentions: {', '.join(evidence.unknown_names)}"
    if evidence.unknown_terms and evidence.unknown_share >= 0.3:
        return f"key terms absent from the corpus: {', '.join(evidence.unknown_terms)}"
    return (
        f"evidence too weak (best passage cosine {evidence.top_dense:.3f}, best sentence {evidence.best_sentence:.3f}, "
        f"terms covered {evidence.coverage:.2f})"
    )
