"""The evaluation report's schema (report.json): its records, the splits' roles, the reading notes, loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator

from ptce_assistant.answering.answer import Answer
from ptce_assistant.conversation import Turn
from ptce_assistant.errors import read_record
from ptce_assistant.evals.metrics import CORE_METRICS, MetricValue, Percentiles, Scores

SCHEMA_VERSION = 2  # 2: the case record embeds the Answer (1 copied its fields flat)
ASSISTANT = "assistant"
SPLIT_ROLES = {
    "dev": "tuning split: built the thesaurus (src/ptce_assistant/thesaurus.py) and, with the validation "
    "splits, fits the gate's and the sentence selector's models (src/ptce_assistant/data/calibration.json); its "
    "numbers are optimistic.",
    "heldout": "validation split since session 2: read once in session 1 (one change then answered a failure "
    "class it revealed: English questions no longer judged by the French vocabulary gate); in session 2 it "
    "scored retrieval variants (benchmarks/retrieval_variants.py, none adopted) and its failures showed that "
    "'et le suivant ?' was not understood (fixed); since session 5 the calibration is fitted on it.",
    "heldout-blind": "validation split since session 2: written blind and run once at the end of session 1; "
    "in session 2 it scored retrieval variants (none adopted); since session 5 the calibration is fitted on it.",
    "heldout-blind-2": "validation split since session 5: written blind at the start of session 2 and run once at "
    "its end; in session 5 the calibration is fitted on it and it chose the sentence threshold.",
    "heldout-blind-3": "validation split since session 6: written blind at the start of session 5 and run once at "
    "its end; its failures shaped session 6's answer types (answering/answer_types.py) and the gate is fitted on it.",
    "heldout-blind-4": "validation split since session 8: written blind at the start of session 6 and run once at "
    "the end of session 7; its failures shaped session 8's fixes (each cites its case) and the gate is fitted on it.",
    "heldout-blind-5": "validation split since session 8's second round: written blind at the start of session 8 and "
    "run once after its first round; its failures shaped the second round (each rule cites its case) and the gate is "
    "fitted on it.",
    "heldout-blind-6": "test split: written mid-session 8 by someone who saw neither the code nor the other sets, "
    "before that session's second round, and run once at its end; the freshest estimate.",
}
UNDECLARED_ROLE = "ad-hoc set: its role (tuning or held-out) is not declared."
SYNTHETIC_STANDALONE = "standalone"
NOTES = (
    "Retrieval metrics are computed on answerable cases only; a passage is relevant when it covers half "
    "of an expected quote (evals/dataset.py `covers`). Retrieval depth is 10 (MRR@10).",
    "evidence@N: the ranked passages joined in rank order; the case passes when a covering passage "
    "ends within the first N characters.",
    "Citation validity: every quote verbatim in its chunk and equal to document_text[start:end], every [n] "
    "of the answer resolves to a citation, and at least one citation (answered cases). Evidence hit: a "
    "cited quote covers an expected quote. Citation precision: share of distinct cited chunks covering one.",
    "Right sentence: on answered cases whose first passage covers an expected quote, whether the answer quotes "
    "that quote from it; right_sentence_word_overlap scores the word-overlap selection of sessions 1-4 on the "
    "same cases (the baseline of the sentence selector).",
    "Supported-sentence rate: extractive answers (and generative turns that fell back to them) are made of "
    "verbatim quotes, so the rate is 1.0 by construction for them and is not a measurement; generated "
    "sentences are re-checked by the verifier against their cited quotes.",
    "Baselines see the question as typed (no conversation rewrite, no thesaurus, no list pinning) and are "
    "scored on retrieval only; the naive LangChain pipeline returns 4 passages, so its hit@5 is hit@4, "
    "and answer metrics do not apply to it (it composes no answer).",
    "Failing cases: those that miss a core metric (" + ", ".join(CORE_METRICS) + "); every failed metric is "
    "listed with each case.",
    f"'{SYNTHETIC_STANDALONE}' in the per-tag tables is computed, not a tag: answerable cases without history, "
    "to read follow-ups against.",
)


class HitRecord(BaseModel):
    """One of the assistant's top-10 passages for a case."""

    chunk_id: str
    rank: int
    dense_rank: int | None = None
    lexical_rank: int | None = None
    covers_expected: bool


class PassageRecord(BaseModel):
    """One passage a baseline ranked for a case."""

    passage_id: str
    rank: int
    covers_expected: bool


class BaselineOutcome(BaseModel):
    """A baseline's ranking of one case and its scores."""

    passages: list[PassageRecord]
    scores: Scores
    passed: dict[str, bool | None]


class CaseRecord(BaseModel):
    """Everything measured on one case: the case, the assistant's answer as every surface gets it, the scores."""

    split: str
    id: str
    question: str
    history: list[Turn] = Field(default_factory=list)
    answerable: bool
    lang: str
    tags: list[str]
    expected_quotes: list[str]
    hits: list[HitRecord]
    answer: Answer = Field(description="The assistant's answer, its consulted passages left out (see hits).")
    invalid_citations: list[int] = Field(description="Numbers of the citations that are not verbatim.")
    dangling_markers: list[int] = Field(description="[n] of the answer that name no citation.")
    verbatim_by_construction: bool
    scores: Scores
    passed: dict[str, bool | None]
    baselines: dict[str, BaselineOutcome] = Field(default_factory=dict)

    @property
    def failed_metrics(self) -> list[str]:
        """The assistant's metrics this case fails."""
        return [metric for metric, ok in self.passed.items() if ok is False]

    @property
    def failing(self) -> bool:
        """The case misses one of the core metrics (evidence in the top 5, valid and on-target citations,
        right decision, language)."""
        return any(self.passed.get(metric) is False for metric in CORE_METRICS)

    @property
    def groups(self) -> list[str]:
        """Its tags, plus the computed 'standalone' group for answerable cases without history."""
        extra = [SYNTHETIC_STANDALONE] if self.answerable and not self.history else []
        return [*self.tags, *extra]


SystemMetrics = dict[str, MetricValue]


class SplitSummary(BaseModel):
    """The metrics of one eval set, for the assistant and each baseline, overall and per tag."""

    name: str
    path: str
    role: str
    n_cases: int
    n_answerable: int
    metrics: dict[str, SystemMetrics]
    by_tag: dict[str, dict[str, SystemMetrics]]
    latency_ms: dict[str, Percentiles]
    verbatim_by_construction: int = Field(description="Answered cases whose sentences are verbatim quotes.")


class RunInfo(BaseModel):
    """How, where and on what the evaluation ran."""

    date: str
    git_commit: str | None
    corpus_hash: str
    index_generation: str
    chunks: int
    embedder: str
    mode: str
    llm: str
    machine: dict[str, Any]
    settings: dict[str, Any]
    baselines: dict[str, str] = Field(description="name -> what it is")
    seconds: float
    notes: list[str] = Field(default_factory=lambda: list(NOTES))


class EvalReport(BaseModel):
    """report.json."""

    schema_version: int = SCHEMA_VERSION
    run: RunInfo
    splits: dict[str, SplitSummary]
    cases: list[CaseRecord]

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        """A report of an older schema read into this one."""
        if isinstance(data, dict) and data.get("schema_version", SCHEMA_VERSION) < SCHEMA_VERSION:
            return {**data, "schema_version": SCHEMA_VERSION, "cases": [upgrade_flat_case(c) for c in data["cases"]]}
        return data

    @property
    def systems(self) -> list[str]:
        """The assistant, then the baselines that ran."""
        return [ASSISTANT, *self.run.baselines]

    def failing_cases(self, split: str | None = None) -> list[CaseRecord]:
        """Cases failing one of the assistant's core metrics."""
        return [c for c in self.cases if c.failing and (split is None or c.split == split)]


# Schema 1's answer fields, copied flat beside the case's (the answer's language was `answer_lang`).
_FLAT_ANSWER_FIELDS = ("standalone_query", "answer", "mode", "model", "abstained", "confidence", "citations", "notice")


def upgrade_flat_case(case: dict[str, Any]) -> dict[str, Any]:
    """A case record of schema 1 in the shape of schema 2: its answer's fields gathered into the `Answer`."""
    flat = dict(case)
    answer = {field: flat.pop(field) for field in _FLAT_ANSWER_FIELDS if field in flat}
    answer |= {"question": flat["question"], "lang": flat.pop("answer_lang"), "timings_ms": flat.pop("timings_ms")}
    return flat | {"answer": answer}


def load_report(path: Path) -> EvalReport:
    """Read a report.json (PtceError when it is missing or not a report)."""
    return read_record(path, EvalReport, "rapport illisible", "ce n'est pas un report.json d'évaluation")


class WrittenModeRecord(BaseModel):
    """What a generative eval measured of the written mode: how often its lead was dropped, how long it took."""

    split: str
    model: str
    answered: int
    fallback_rate: float = Field(description="Share of answered cases shown without a written lead.")
    total_ms_p50: float | None


def written_mode_record(report: EvalReport) -> WrittenModeRecord | None:
    """The written mode's figures from a generative report (its last split), None for an extractive one."""
    if report.run.mode != "generative" or not report.splits:
        return None
    split = list(report.splits)[-1]
    answered = [c for c in report.cases if c.split == split and not c.answer.abstained]
    if not answered:
        return None
    return WrittenModeRecord(
        split=split,
        model=answered[0].answer.model,
        answered=len(answered),
        fallback_rate=sum(c.verbatim_by_construction for c in answered) / len(answered),
        total_ms_p50=report.splits[split].latency_ms.get("total", Percentiles(p50=None, p95=None, n=0)).p50,
    )
