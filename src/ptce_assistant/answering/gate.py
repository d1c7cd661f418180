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

from ptce_assistant.answering.calibration import LinearModel
from ptce_assistant.answering.evidence import Idf, SentenceCandidate, question_terms, weighted_share
from ptce_assistant.lexical import ENGLISH_CAPITALISED, QUESTION_WORDS, STOPWORDS, french_terms, strip_accents
from ptce_assistant.retrieval import Hit

Refusal = Literal["injection", "chitchat", "empty"]

_INJECTION = re.compile(
    r"(ignore|oublie|oubliez|ignorez|disregard|forget)\b.{0,40}\b(instruction|consigne|regle|prompt|rule)"
    r"|prompt\s+systeme|system\s+prompt|tes\s+consignes|vos\s+consignes|your\s+instructions"
    r"|(affiche|montre|revele|repete|print|reveal|show)\b.{0,30}\b(prompt|consignes|instructions)"
    r"|jailbreak|\bdan\b mode|mode developpeur|developer mode|tu es maintenant|you are now|act as"
    r"|\binvente\w*\b|\bmake (it|something) up\b|\boublie (le|les) (document|corpus|texte)"
    r"|\b(tes|vos|ton|ta|votre|your)\s+(\w+\s+)?(regles?|consignes?|instructions?|prompt|rules?)\b"
    r"|\b(texte|text)\s+(au[- ]dessus|ci[- ]dessus|above|precedent)"
    r"|^\s*(system|systeme|assistant)\s*:"
    r"|\b(aucune|sans|no|without)\s+(regles?|rules?|limites?|restrictions?)\b",
    re.IGNORECASE,
)
_CHITCHAT = re.compile(
    r"^\s*(bonjour|bonsoir|salut|coucou|hello|hi|hey|merci|thanks|thank you|ca va|comment (ca|vas[- ]tu|allez[- ]vous)"
    r"|qui es[- ]tu|who are you|au revoir|bye)\b[\s!?.,]*(.{0,40})$",
    re.IGNORECASE,
)


class Evidence(BaseModel):
    """What retrieval says about a question: the features the gate decides on."""

    top_dense: float = Field(description="Best e5 cosine between the question and a passage.")
    dense_margin: float = Field(description="Best passage cosine minus the second best.")
    best_sentence: float = Field(description="Best cosine between the question and one sentence of a top passage.")
    coverage: float = Field(description="Share of the question's terms found in the top 3 passages.")
    unknown_share: float = Field(description="IDF-weighted share of the question's terms absent from the corpus.")
    unknown_terms: list[str]
    query_terms: int
    answer_type: str | None = None
    answer_type_found: bool = True
    unknown_names: list[str] = Field(default_factory=list, description="Names in the question the corpus never uses.")

    def features(self) -> dict[str, float]:
        """The gate model's inputs."""
        return {
            "top_dense": self.top_dense,
            "dense_margin": self.dense_margin,
            "best_sentence": self.best_sentence,
            "coverage": self.coverage,
            "unknown_share": self.unknown_share,
            "answer_type_missing": float(not self.answer_type_found),
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


def evidence_for(
    query: str,
    hits: Sequence[Hit],
    candidates: Sequence[SentenceCandidate],
    vocabulary: Set[str],
    idf: Idf,
    lang: str,
) -> Evidence:
    """The gate's features for a standalone query, its ranked passages and their scored sentences."""
    terms = question_terms(query)
    top = hits[:3]
    covered: set[str] = set()
    for hit in top:
        covered |= set(terms) & set(french_terms(hit.chunk.indexed_text()))
    unknown = sorted(t for t in terms if t not in vocabulary)
    similarities = sorted((h.dense_similarity or 0.0 for h in hits), reverse=True) or [0.0]
    # A heading is part of what a passage says ("8 leviers au développement des PTCE ont été identifiés").
    passages = [f"{h.chunk.breadcrumb[-1]}\n{h.chunk.text}" if h.chunk.breadcrumb else h.chunk.text for h in top]
    answer_type, found = answer_type_check(query, passages, vocabulary)
    return Evidence(
        top_dense=similarities[0],
        dense_margin=similarities[0] - (similarities[1] if len(similarities) > 1 else 0.0),
        best_sentence=max((c.similarity for c in candidates), default=0.0),
        coverage=len(covered) / len(terms) if terms else 0.0,
        # The corpus vocabulary is French: an English question's words say nothing about coverage.
        unknown_share=weighted_share(terms, set(unknown), idf) if lang == "fr" else 0.0,
        unknown_terms=unknown,
        query_terms=len(terms),
        answer_type=answer_type,
        answer_type_found=found,
        unknown_names=unknown_names(query, vocabulary),
    )


# A capitalised word inside the question (not its first word, not after a full stop or a quote).
_CAPITALISED = re.compile(r"[A-ZÀ-ÖØ-Þ][\w'’-]+")


def unknown_names(query: str, vocabulary: Set[str]) -> list[str]:
    """Names the question uses that the corpus never does ("Bretagne", "CFE"): it asks about something else.

    Added after the issue's example "Quelles coopératives agricoles de Bretagne font partie d'un PTCE ?",
    answered with unrelated quotes; the gate model learns its weight from the eval cases.
    """
    names: list[str] = []
    for match in _CAPITALISED.finditer(query):
        before = query[: match.start()].rstrip()
        if not before or before[-1] in '.!?:«"“(':
            continue
        folded = strip_accents(match[0].lower())
        if folded in STOPWORDS or folded in QUESTION_WORDS or folded in ENGLISH_CAPITALISED:
            continue
        terms = french_terms(match[0])
        if terms and not any(t in vocabulary for t in terms):
            names.append(match[0])
    return names


# Expected answer types (classic QA): a question asking for an amount, a law, a year, a count or
# the meaning of an acronym is answered only if the passages hold something of that type.
_MONEY_ASKED = re.compile(
    r"\b(budgets?|montants?|couts?|coute\w*|euros?|salaires?|tarifs?|prix"
    r"|how much (money|funding)|combien (d.argent|verse|coute))\b|€"
)
_MONEY_GIVEN = re.compile(r"€|\beuros?\b|\d\s?(k|m)€", re.IGNORECASE)
_LAW_ASKED = re.compile(r"\b(lois?|decrets?|article de loi|cadre (legal|juridique)|laws?|legislation|statute)\b")
_LAW_GIVEN = re.compile(r"\b(lois?|décrets?|article)\b", re.IGNORECASE)
_DATE_ASKED = re.compile(r"\b(quand|en quelle annee|a quelle date|depuis quand|when|what year|which year)\b")
_DATE_GIVEN = re.compile(
    r"\b(1[89]\d\d|20\d\d|janvier|fevrier|février|mars|avril|mai|juin|juillet|aout|août"
    r"|septembre|octobre|novembre|decembre|décembre)\b",
    re.IGNORECASE,
)
_AUTHOR_ASKED = re.compile(
    r"\b(auteurs?|redige\w*|ecrit|ecrite|chercheurs?|consultants?|who wrote|authors?"
    r"|written by)\b"
)
_AUTHOR_GIVEN = re.compile(r"\b(rédigée? par|auteurs?|écrite? par|sous la direction)\b", re.IGNORECASE)
_COUNT_ASKED = re.compile(
    r"\b(?:combien d(?:e\s+|')(?!entre)(\w+)|how many (\w+)|nombre (?:\w+\s+)?d(?:e\s+|')(\w+)"
    r"|(?:average|total|mean) number of (\w+)|combien\b)"
)
# "Dans quel département se trouve X ?": a place named right after X, in the same clause.
_PLACE_ASKED = re.compile(
    r"\b(?:ou (?:se (?:trouve|situe)|est (?:situe|implante|installe))\w*|dans quel(?:le)?s? (?:departement|region"
    r"|ville|commune|pays|territoire)|where (?:is|are)|in which (?:department|region|town|city|country))\b"
)
_PLACE = (
    r"(?:d[ée]partements?|r[ée]gions?|villes?|communes?|PNR|parc naturel|agglom[ée]ration)\s+(?:de |du |des |d')?\w"
)
# "Qui le préside ?": a person's role or name, which the passages must hold.
_PERSON_ASKED = re.compile(
    r"\bqui (?:le |la |les |l')?(?:preside|dirige|a (?:fonde|cree))\w*|\bwho (?:chairs|heads|runs|leads|founded)\b"
    r"|\bnom (?:du|de la) (?:president|presidente|directeur|directrice|fondateur|fondatrice)\b"
)
_PERSON_GIVEN = re.compile(
    r"\b(?:présidée? par|dirigée? par|fondée? par|président|présidente|directeur|directrice|fondateur|fondatrice)\b",
    re.IGNORECASE,
)
_QUANTITY = (
    r"(?:\d+|un|une|deux|trois|quatre|cinq|six|sept|huit|neuf|dix|douze|quinze|vingt|trente|cinquante|cent"
    r"|mille|dizaine|douzaine|quinzaine|vingtaine|trentaine|quarantaine|cinquantaine|centaine|millier)"
)
_ACRONYM_ASKED = re.compile(r"\b(signifie|veut dire|sigle|acronyme|stands? for|acronym|definition)\b")
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")


def answer_type_check(query: str, passages: Sequence[str], vocabulary: Set[str]) -> tuple[str | None, bool]:
    """(expected answer type, whether the passages contain an answer of that type)."""
    plain = strip_accents(query.lower())
    joined = "\n".join(passages)
    for year in _YEAR.findall(plain):
        if year not in vocabulary:
            return "year", False
    if _MONEY_ASKED.search(plain):
        return "amount", bool(_MONEY_GIVEN.search(joined))
    if _LAW_ASKED.search(plain):
        return "law", bool(_LAW_GIVEN.search(joined))
    if _AUTHOR_ASKED.search(plain):
        return "author", bool(_AUTHOR_GIVEN.search(joined))
    if _PERSON_ASKED.search(plain):
        return "person", bool(_PERSON_GIVEN.search(joined))
    if _PLACE_ASKED.search(plain):
        return "place", _placed(query, joined)
    count = _COUNT_ASKED.search(plain)
    if count:
        noun = next((g for g in count.groups() if g), None)
        return "count", _counted(noun, strip_accents(joined.lower()))
    if _DATE_ASKED.search(plain):
        return "date", bool(_DATE_GIVEN.search(joined))
    if _ACRONYM_ASKED.search(plain):
        acronyms = re.findall(r"\b[A-Z]{2,6}\b", query)
        return "definition", any(re.search(rf"\w[^()]{{8,}}\({a}\)", joined) for a in acronyms)
    return None, True


def _placed(query: str, text: str) -> bool:
    """A place follows the entity asked about in the same clause ("Aradines sur le PNR des Ardennes")."""
    names = [n for n in re.findall(r"\b[A-ZÉÈ][\w'-]{2,}", query) if n.lower() not in QUESTION_WORDS]
    targets = names[1:] if names and query.lstrip().startswith(names[0]) else names  # not the question's first word
    if not targets:
        return bool(re.search(_PLACE, text, re.IGNORECASE))
    return any(re.search(rf"{re.escape(name)}[^,;.\n]{{0,40}}?{_PLACE}", text, re.IGNORECASE) for name in targets)


def _counted(noun: str | None, text: str) -> bool:
    """A quantity stands right before the counted noun ("une cinquantaine d'initiatives")."""
    if noun is None:
        return bool(re.search(rf"\b{_QUANTITY}\b", text))
    stem = french_terms(noun)
    if not stem:
        return False
    # The noun right after the quantity ("8 leviers") or one word later ("une cinquantaine d'initiatives").
    pattern = rf"\b{_QUANTITY}\s+(\w+)(?:\s+(?:de\s+|d')?(\w+))?"
    return any(french_terms(word)[:1] == stem[:1] for m in re.finditer(pattern, text) for word in m.groups() if word)


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
    """The decision for a request the corpus can never answer (injection, chitchat, empty)."""
    return GateDecision(answerable=False, confidence=0.0, reason=f"refused: {refusal}", refusal=refusal)


def _weakest(evidence: Evidence) -> str:
    """Why the gate abstained, in the words of its strongest signal."""
    if not evidence.answer_type_found:
        return f"asks for a {evidence.answer_type} the passages do not contain"
    if evidence.unknown_names:
        return f"names what the corpus never mentions: {', '.join(evidence.unknown_names)}"
    if evidence.unknown_terms and evidence.unknown_share >= 0.3:
        return f"key terms absent from the corpus: {', '.join(evidence.unknown_terms)}"
    return (
        f"evidence too weak (best passage cosine {evidence.top_dense:.3f}, best sentence {evidence.best_sentence:.3f}, "
        f"terms covered {evidence.coverage:.2f})"
    )
