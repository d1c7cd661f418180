"""The answerability gate: decided from retrieval evidence, before anything is composed.

The small local LLM invents answers when passages are near but not on point, so whether to answer
is never left to it. Thresholds live in Settings and were calibrated on evals/dev.jsonl only
(see README, "Abstention").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel

from ptce_assistant.config import Settings
from ptce_assistant.lexical import french_terms, strip_accents
from ptce_assistant.retrieval import Hit

Refusal = Literal["injection", "chitchat", "empty"]

_INJECTION = re.compile(
    r"(ignore|oublie|oubliez|ignorez|disregard|forget)\b.{0,40}\b(instruction|consigne|regle|prompt|rule)"
    r"|prompt\s+systeme|system\s+prompt|tes\s+consignes|vos\s+consignes|your\s+instructions"
    r"|(affiche|montre|revele|repete|print|reveal|show)\b.{0,30}\b(prompt|consignes|instructions)"
    r"|jailbreak|\bdan\b mode|mode developpeur|developer mode|tu es maintenant|you are now|act as",
    re.IGNORECASE,
)
_CHITCHAT = re.compile(
    r"^\s*(bonjour|bonsoir|salut|coucou|hello|hi|hey|merci|thanks|thank you|ca va|comment (ca|vas[- ]tu|allez[- ]vous)"
    r"|qui es[- ]tu|who are you|au revoir|bye)\b[\s!?.,]*(.{0,25})$",
    re.IGNORECASE,
)


class Evidence(BaseModel):
    """What retrieval says about a question: the features the gate decides on."""

    top_dense: float
    coverage: float
    unknown_terms: list[str]
    query_terms: int


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
    return None


def evidence_for(query: str, hits: Sequence[Hit], vocabulary: set[str]) -> Evidence:
    """Dense similarity of the best passage, and how much of the query the top passages cover."""
    terms = set(french_terms(query))
    top = hits[:3]
    covered: set[str] = set()
    for hit in top:
        covered |= terms & set(french_terms(hit.chunk.indexed_text()))
    unknown = sorted(t for t in terms if t not in vocabulary)
    dense = max((h.dense_similarity or 0.0 for h in hits), default=0.0)
    return Evidence(
        top_dense=dense,
        coverage=len(covered) / len(terms) if terms else 0.0,
        unknown_terms=unknown,
        query_terms=len(terms),
    )


def decide(question: str, query: str, hits: Sequence[Hit], vocabulary: set[str], settings: Settings,
           pinned: bool = False) -> GateDecision:
    """Whether the corpus answers `query`; the reason is shown to evaluators."""
    refusal = refusal_kind(question)
    if refusal:
        return GateDecision(answerable=False, confidence=0.0, reason=f"refused: {refusal}", refusal=refusal)
    if not hits:
        return GateDecision(answerable=False, confidence=0.0, reason="no passage retrieved")
    evidence = evidence_for(query, hits, vocabulary)
    confidence = _confidence(evidence)
    if pinned:
        return GateDecision(answerable=True, confidence=max(confidence, 0.8),
                            reason="list item named by the conversation", evidence=evidence)
    unknown_share = len(evidence.unknown_terms) / evidence.query_terms if evidence.query_terms else 1.0
    if evidence.top_dense < settings.gate_min_dense:
        return GateDecision(answerable=False, confidence=confidence, evidence=evidence,
                            reason=f"best passage too far (cosine {evidence.top_dense:.3f} "
                                   f"< {settings.gate_min_dense})")
    if (unknown_share >= settings.gate_max_unknown_share
            and evidence.top_dense < settings.gate_confident_dense):
        return GateDecision(answerable=False, confidence=confidence, evidence=evidence,
                            reason=f"key terms absent from the corpus: {', '.join(evidence.unknown_terms)}")
    return GateDecision(answerable=True, confidence=confidence, evidence=evidence, reason="supported by retrieval")


def _confidence(evidence: Evidence) -> float:
    """A 0-1 score that grows with dense similarity and term coverage (shown, not decided on)."""
    dense = min(max((evidence.top_dense - 0.75) / 0.15, 0.0), 1.0)
    return round(0.6 * dense + 0.4 * evidence.coverage, 3)
