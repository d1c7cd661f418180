"""Offline metrics: retrieval ranks, evidence in context, citations, abstention, language, latency.

Each case is scored as a mapping {metric: value} where the value is 1.0/0.0 (or a share for graded
metrics) and None when the metric does not apply to the case; a split's metric is the mean over the
cases where it applies. Evidence is judged with the project's hit rule, `covers`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel

from ptce_assistant.answering.answer import Answer
from ptce_assistant.answering.citations import citation_is_valid
from ptce_assistant.evals.dataset import EvalCase, covers

if TYPE_CHECKING:
    from ptce_assistant.chunking import Chunk
    from ptce_assistant.index import CorpusIndex

Scores = dict[str, float | None]

RANK_CUTOFFS = (1, 3, 5)
MRR_DEPTH = 10
CONTEXT_BUDGETS = (400, 800, 1600)
# Ranked passages are joined like a prompt would join them.
CONTEXT_SEPARATOR = "\n\n"

RETRIEVAL_METRICS = (
    *(f"hit@{k}" for k in RANK_CUTOFFS),
    f"mrr@{MRR_DEPTH}",
    *(f"evidence@{budget}" for budget in CONTEXT_BUDGETS),
)
CITATION_METRICS = ("citation_validity", "evidence_hit", "citation_precision")
# Sentence selection alone: on answered cases whose first passage covers the expected quote, is the quote
# taken from it the expected one? The word-overlap selection of sessions 1-4 is scored beside it.
SENTENCE_METRICS = ("right_sentence", "right_sentence_word_overlap")
ANSWER_METRICS = (
    "abstention_accuracy",
    "false_abstention_rate",
    "decision_accuracy",
    "supported_sentence_rate",
    "language_match",
)
HEADLINE_METRICS = (*RETRIEVAL_METRICS, *CITATION_METRICS, *SENTENCE_METRICS, *ANSWER_METRICS)
# A case fails when it misses one of these; finer ones (hit@1, evidence@400, precision) are read in aggregate.
CORE_METRICS = (
    "hit@5",
    "citation_validity",
    "evidence_hit",
    "decision_accuracy",
    "language_match",
    "supported_sentence_rate",
)
LOWER_IS_BETTER = frozenset({"false_abstention_rate"})
LATENCY_STAGES = ("retrieve", "generate", "first_token", "total")

# "[1]", "[1, 2]", "[1][2]": every number must name a citation of the answer.
_MARKER = re.compile(r"\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")


class MetricValue(BaseModel):
    """A metric over a split: the mean and the number of cases it applies to."""

    value: float | None
    n: int


class Percentiles(BaseModel):
    """Latency of one stage over a split, in milliseconds."""

    p50: float | None
    p95: float | None
    n: int


# Retrieval -------------------------------------------------------------------------------------
def covers_any(text: str, quotes: Iterable[str]) -> bool:
    """The text holds at least one expected quote (the project's hit rule)."""
    return any(covers(text, quote) for quote in quotes)


def first_covering_rank(ranked_texts: Sequence[str], quotes: Sequence[str]) -> int | None:
    """1-based rank of the first passage that covers an expected quote."""
    return next((rank for rank, text in enumerate(ranked_texts, start=1) if covers_any(text, quotes)), None)


def reciprocal_rank(rank: int | None, depth: int = MRR_DEPTH) -> float:
    """1/rank of the first relevant passage, 0 beyond `depth`."""
    return 1.0 / rank if rank is not None and rank <= depth else 0.0


def context_chars_to_evidence(ranked_texts: Sequence[str], quotes: Sequence[str]) -> int | None:
    """Characters of ranked context (passages joined in rank order) up to the end of the first covering one."""
    used = 0
    for rank, text in enumerate(ranked_texts):
        used += (len(CONTEXT_SEPARATOR) if rank else 0) + len(text)
        if covers_any(text, quotes):
            return used
    return None


def retrieval_scores(ranked_texts: Sequence[str], quotes: Sequence[str]) -> Scores:
    """hit@k, reciprocal rank and evidence within each context budget for one answerable case."""
    rank = first_covering_rank(ranked_texts, quotes)
    chars = context_chars_to_evidence(ranked_texts, quotes)
    scores: Scores = {f"hit@{k}": float(rank is not None and rank <= k) for k in RANK_CUTOFFS}
    scores[f"mrr@{MRR_DEPTH}"] = reciprocal_rank(rank)
    scores.update({f"evidence@{b}": float(chars is not None and chars <= b) for b in CONTEXT_BUDGETS})
    return scores


# Citations -------------------------------------------------------------------------------------
def answer_markers(text: str) -> list[int]:
    """Every citation number written in an answer, in order."""
    return [int(n) for m in _MARKER.finditer(text) for n in re.split(r"\s*[,;]\s*", m[1])]


def dangling_markers(answer: Answer) -> list[int]:
    """Markers of the answer text that name no citation."""
    numbers = {c.n for c in answer.citations}
    return [n for n in answer_markers(answer.answer) if n not in numbers]


def citations_valid(answer: Answer, index: CorpusIndex) -> bool:
    """At least one citation, each verbatim in its chunk and at its document offsets, and no dangling [n]."""
    return (
        bool(answer.citations)
        and all(citation_is_valid(c, index) for c in answer.citations)
        and not dangling_markers(answer)
    )


def evidence_cited(answer: Answer, quotes: Sequence[str]) -> bool:
    """Some cited quote covers an expected quote."""
    return any(covers_any(c.quote, quotes) for c in answer.citations)


def citation_precision(answer: Answer, quotes: Sequence[str], index: CorpusIndex) -> float | None:
    """Share of the distinct cited chunks that cover an expected quote (None without citations)."""
    cited = list(dict.fromkeys(c.chunk_id for c in answer.citations))
    if not cited:
        return None
    on_target = sum(cid in index.by_id and covers_any(index.by_id[cid].text, quotes) for cid in cited)
    return on_target / len(cited)


def sentence_scores(answer: Answer, top: Chunk | None, quotes: Sequence[str]) -> Scores:
    """Right sentence of the right first passage: the assistant's quote, and the word-overlap selection's."""
    if answer.abstained or top is None or not covers_any(top.text, quotes):
        return dict.fromkeys(SENTENCE_METRICS)
    from ptce_assistant.evals.baselines import word_overlap_sentence

    quoted = any(c.chunk_id == top.chunk_id and covers_any(c.quote, quotes) for c in answer.citations)
    start, end = word_overlap_sentence(top.text, answer.standalone_query)
    return {
        "right_sentence": float(quoted),
        "right_sentence_word_overlap": float(covers_any(top.text[start:end], quotes)),
    }


# Answers ---------------------------------------------------------------------------------------
def is_verbatim_answer(answer: Answer) -> bool:
    """Extractive text (asked for, or the fallback of a generative turn): sentences are corpus quotes."""
    return answer.mode == "extractive" or answer.verification.fallback is not None


def supported_sentence_rate(answer: Answer, index: CorpusIndex) -> float | None:
    """Share of the answer's sentences carrying [n] that their cited quotes support.

    Extractive sentences are the quotes themselves: 1.0 by construction, not measured. Generated
    sentences are re-checked with the verifier against the cited quotes only (not whole passages).
    """
    if answer.abstained:
        return None
    if is_verbatim_answer(answer):
        return 1.0
    from ptce_assistant.answering.verify import verify_answer

    by_number = {c.n: index.by_id[c.chunk_id].quoted(c.start, c.end) for c in answer.citations}
    # A number with no citation supports nothing: an empty span stands in its place.
    quotes = [
        by_number[n] if n in by_number else next(iter(by_number.values())).excerpt(0, 0)
        for n in range(1, max(by_number, default=0) + 1)
    ]
    checked = verify_answer(answer.answer, quotes, answer.lang).verification
    uncited = sum(d.reason in ("no citation", "no answer in passages") for d in checked.dropped)
    carrying = checked.checked_sentences - uncited
    return checked.kept_sentences / carrying if carrying else None


def answer_scores(case: EvalCase, answer: Answer, index: CorpusIndex) -> Scores:
    """Citation and answer metrics of one case (None where a metric does not apply)."""
    answered = not answer.abstained
    on_answerable = case.answerable and answered
    return {
        "citation_validity": float(citations_valid(answer, index)) if answered else None,
        "evidence_hit": float(evidence_cited(answer, case.expected_quotes)) if on_answerable else None,
        "citation_precision": citation_precision(answer, case.expected_quotes, index) if on_answerable else None,
        "abstention_accuracy": None if case.answerable else float(answer.abstained),
        "false_abstention_rate": float(answer.abstained) if case.answerable else None,
        "decision_accuracy": float(answer.abstained != case.answerable),
        "supported_sentence_rate": supported_sentence_rate(answer, index),
        "language_match": float(answer.lang == case.lang),
    }


# Pass/fail -------------------------------------------------------------------------------------
def passed(metric: str, value: float | None) -> bool | None:
    """A case passes a metric when its value is perfect (MRR: the evidence is in the top 10)."""
    if value is None:
        return None
    if metric in LOWER_IS_BETTER:
        return value == 0.0
    if metric.startswith("mrr@"):
        return value > 0.0
    return value >= 1.0


# Aggregation -----------------------------------------------------------------------------------
def aggregate(cases: Iterable[Mapping[str, float | None]], metrics: Sequence[str]) -> dict[str, MetricValue]:
    """Mean of each metric over the cases where it applies."""
    values: dict[str, list[float]] = {m: [] for m in metrics}
    for scores in cases:
        for metric in metrics:
            value = scores.get(metric)
            if value is not None:
                values[metric].append(value)
    return {m: MetricValue(value=sum(v) / len(v) if v else None, n=len(v)) for m, v in values.items()}


def percentiles(samples: Sequence[float]) -> Percentiles:
    """p50 and p95 (linear interpolation) of latency samples."""
    if not samples:
        return Percentiles(p50=None, p95=None, n=0)
    p50, p95 = np.percentile(np.asarray(samples, dtype=float), [50, 95])
    return Percentiles(p50=round(float(p50), 2), p95=round(float(p95), 2), n=len(samples))


def latency(timings: Iterable[Mapping[str, float]]) -> dict[str, Percentiles]:
    """p50/p95 of each stage over the cases that went through it."""
    samples: dict[str, list[float]] = {stage: [] for stage in LATENCY_STAGES}
    for timing in timings:
        for stage in LATENCY_STAGES:
            if stage in timing:
                samples[stage].append(timing[stage])
    return {stage: percentiles(values) for stage, values in samples.items()}
