"""The evaluation report: its schema (report.json) and its renderings (report.md, report.html, plots)."""

from __future__ import annotations

import base64
import html
import io
import zlib
from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ptce_assistant.answering.answer import Citation
from ptce_assistant.conversation import Turn
from ptce_assistant.errors import read_record
from ptce_assistant.evals.metrics import (
    CORE_METRICS,
    HEADLINE_METRICS,
    LOWER_IS_BETTER,
    MetricValue,
    Percentiles,
    Scores,
)

SCHEMA_VERSION = 1
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
    "heldout-blind-4": "test split: written at the start of session 6 by someone who saw neither the code nor "
    "the other sets, before that session's changes, and run once at its end; the freshest estimate.",
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


# Schema ----------------------------------------------------------------------------------------
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
    """Everything measured on one case."""

    split: str
    id: str
    question: str
    history: list[Turn] = Field(default_factory=list)
    answerable: bool
    lang: str
    tags: list[str]
    expected_quotes: list[str]
    standalone_query: str
    hits: list[HitRecord]
    answer: str
    answer_lang: str
    mode: str
    model: str
    abstained: bool
    confidence: float
    citations: list[Citation]
    invalid_citations: list[int] = Field(description="Numbers of the citations that are not verbatim.")
    dangling_markers: list[int] = Field(description="[n] of the answer that name no citation.")
    verbatim_by_construction: bool
    notice: str | None = None
    scores: Scores
    passed: dict[str, bool | None]
    timings_ms: dict[str, float]
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

    @property
    def systems(self) -> list[str]:
        """The assistant, then the baselines that ran."""
        return [ASSISTANT, *self.run.baselines]

    def failing_cases(self, split: str | None = None) -> list[CaseRecord]:
        """Cases failing one of the assistant's core metrics."""
        return [c for c in self.cases if c.failing and (split is None or c.split == split)]


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
    answered = [c for c in report.cases if c.split == split and not c.abstained]
    if not answered:
        return None
    return WrittenModeRecord(
        split=split,
        model=answered[0].model,
        answered=len(answered),
        fallback_rate=sum(c.verbatim_by_construction for c in answered) / len(answered),
        total_ms_p50=report.splits[split].latency_ms.get("total", Percentiles(p50=None, p95=None, n=0)).p50,
    )


# Tables ----------------------------------------------------------------------------------------
def format_value(metric: MetricValue | None) -> str:
    """'0.852' or 'n/a'."""
    return "n/a" if metric is None or metric.value is None else f"{metric.value:.3f}"


def metric_rows(report: EvalReport, split: str) -> list[tuple[str, list[str]]]:
    """Headline table of a split: (metric label, one cell per system)."""
    summary = report.splits[split]
    rows = []
    for metric in HEADLINE_METRICS:
        label = f"{metric} (lower is better)" if metric in LOWER_IS_BETTER else metric
        cells = []
        for system in report.systems:
            value = summary.metrics.get(system, {}).get(metric)
            cell = format_value(value)
            if value is not None and value.value is not None:
                cell += f" (n={value.n})"
            if system == ASSISTANT and metric == "supported_sentence_rate" and value and value.n:
                cell += " (*)" if summary.verbatim_by_construction == value.n else " (**)"
            cells.append(cell)
        rows.append((label, cells))
    return rows


def supported_rate_note(summary: SplitSummary) -> str:
    """What the assistant's supported-sentence rate means on this split."""
    measured = summary.metrics[ASSISTANT]["supported_sentence_rate"].n - summary.verbatim_by_construction
    if measured <= 0:
        return "(*) 1.0 by construction: every answer is made of verbatim quotes; nothing was measured."
    return (
        f"(**) {summary.verbatim_by_construction} answers are verbatim quotes (1.0 by construction); "
        f"{measured} generated answers were measured."
    )


def tag_rows(report: EvalReport, split: str) -> tuple[list[str], list[list[str]]]:
    """Per-tag table: header and rows (hit@5 for every system, then the assistant's answer metrics)."""
    summary = report.splits[split]
    header = ["tag", "cases", *(f"hit@5 {s}" for s in report.systems), "evidence_hit", "decision_accuracy"]
    counts = {tag: sum(tag in c.groups for c in report.cases if c.split == split) for tag in summary.by_tag}
    rows = []
    for tag, systems in summary.by_tag.items():
        row = [tag, str(counts[tag])]
        row += [format_value(systems.get(s, {}).get("hit@5")) for s in report.systems]
        row += [format_value(systems[ASSISTANT].get(m)) for m in ("evidence_hit", "decision_accuracy")]
        rows.append(row)
    return header, rows


def latency_rows(summary: SplitSummary) -> list[list[str]]:
    """Stage, p50, p95, n."""

    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f}"

    return [[stage, ms(p.p50), ms(p.p95), str(p.n)] for stage, p in summary.latency_ms.items()]


def case_summary(case: CaseRecord) -> str:
    """One line: what the assistant did on a case."""
    verdict = "abstained" if case.abstained else f"answered with {len(case.citations)} citation(s)"
    return f"{verdict}, confidence {case.confidence:.2f}; fails {', '.join(case.failed_metrics)}"


# Plots -----------------------------------------------------------------------------------------
def _png(draw: Callable[[Any], None], size: tuple[float, float]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=size, dpi=100)
    try:
        draw(figure)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(figure)


def tag_bars_png(report: EvalReport, split: str) -> bytes:
    """Per tag: hit@5 of every system (answerable tags) and the assistant's decision accuracy."""
    summary = report.splits[split]
    retrieval_tags = [t for t, s in summary.by_tag.items() if s[ASSISTANT]["hit@5"].n]
    decision_tags = list(summary.by_tag)

    def draw(figure: Any) -> None:
        left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
        height = 0.8 / len(report.systems)
        for i, system in enumerate(report.systems):
            values = [summary.by_tag[t].get(system, {}).get("hit@5") for t in retrieval_tags]
            left.barh(
                [y + i * height for y in range(len(retrieval_tags))],
                [(v.value or 0.0) if v else 0.0 for v in values],
                height=height,
                label=system,
            )
        left.set_yticks([y + 0.4 - height / 2 for y in range(len(retrieval_tags))], retrieval_tags, fontsize=8)
        left.invert_yaxis()
        left.set_xlim(0, 1)
        left.set_title(f"{split}: hit@5 by tag (answerable cases)", fontsize=10)
        left.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.05), ncol=len(report.systems))
        accuracy = [summary.by_tag[t][ASSISTANT]["decision_accuracy"].value or 0.0 for t in decision_tags]
        right.barh(range(len(decision_tags)), accuracy, color="tab:green")
        right.set_yticks(range(len(decision_tags)), decision_tags, fontsize=8)
        right.invert_yaxis()
        right.set_xlim(0, 1)
        right.set_title("assistant: answer/abstain decision correct", fontsize=10)

    return _png(draw, (12, max(4.0, 0.28 * len(decision_tags) + 1.5)))


def latency_png(report: EvalReport) -> bytes:
    """Histogram of the assistant's total time per case, one series per split."""

    def draw(figure: Any) -> None:
        axes = figure.subplots()
        for split in report.splits:
            totals = [c.timings_ms["total"] for c in report.cases if c.split == split and "total" in c.timings_ms]
            axes.hist(totals, bins=20, alpha=0.6, label=split)
        axes.set_xlabel("total time per question (ms)")
        axes.set_ylabel("cases")
        axes.set_title("Latency of ask()")
        axes.legend()

    return _png(draw, (7, 4))


def is_correct(case: CaseRecord) -> bool:
    """Right decision and, when answering an answerable case, the expected evidence cited."""
    if not case.answerable:
        return case.abstained
    return not case.abstained and case.scores.get("evidence_hit") == 1.0


def confidence_png(report: EvalReport) -> bytes:
    """Confidence of each case against whether the assistant got it right."""

    def draw(figure: Any) -> None:
        axes = figure.subplots()
        for offset, (answerable, colour) in enumerate(((True, "tab:blue"), (False, "tab:orange"))):
            cases = [c for c in report.cases if c.answerable is answerable]
            y = [
                float(is_correct(c)) + (offset - 0.5) * 0.12 + (zlib.crc32(c.id.encode()) % 7 - 3) * 0.01 for c in cases
            ]
            axes.scatter(
                [c.confidence for c in cases],
                y,
                s=14,
                alpha=0.7,
                color=colour,
                label="answerable" if answerable else "unanswerable",
            )
        axes.set_yticks([0, 1], ["wrong", "right"])
        axes.set_xlabel("assistant confidence")
        axes.set_title("Confidence vs correctness (right = correct decision and evidence cited)")
        axes.legend(fontsize=8)

    return _png(draw, (7, 3.5))


RELIABILITY_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def reliability_rows(report: EvalReport) -> list[list[str]]:
    """The gate's calibration: per confidence band, its mean confidence and the share of cases truly answerable."""
    rows = []
    for low, high in pairwise(RELIABILITY_BINS):
        cases = [c for c in report.cases if low <= c.confidence < high or (high == 1.0 and c.confidence == 1.0)]
        if not cases:
            rows.append([f"{low:.1f}-{high:.1f}", "0", "n/a", "n/a", "n/a"])
            continue
        mean = sum(c.confidence for c in cases) / len(cases)
        answerable = sum(c.answerable for c in cases) / len(cases)
        correct = sum(is_correct(c) for c in cases) / len(cases)
        rows.append([f"{low:.1f}-{high:.1f}", str(len(cases)), f"{mean:.2f}", f"{answerable:.2f}", f"{correct:.2f}"])
    return rows


RELIABILITY_HEADER = ["confidence", "cases", "mean confidence", "share answerable", "share right"]


def reliability_png(report: EvalReport) -> bytes:
    """Reliability curve: the gate's confidence against how often such cases are answerable."""

    def draw(figure: Any) -> None:
        axes = figure.subplots()
        points = [(float(r[2]), float(r[3]), int(r[1])) for r in reliability_rows(report) if r[2] != "n/a"]
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", color="tab:blue", label="gate")
        for x, y, n in points:
            axes.annotate(f"n={n}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
        axes.set_xlabel("gate confidence (mean per band)")
        axes.set_ylabel("share of cases answerable")
        axes.set_title("Reliability of the answerability gate")
        axes.legend(fontsize=8)

    return _png(draw, (5, 4))


def plots(report: EvalReport) -> dict[str, bytes]:
    """Every plot of the report as PNG bytes, by file name."""
    figures = {f"tags-{split}.png": tag_bars_png(report, split) for split in report.splits}
    figures["latency.png"] = latency_png(report)
    figures["confidence.png"] = confidence_png(report)
    figures["reliability.png"] = reliability_png(report)
    return figures


# Markdown --------------------------------------------------------------------------------------
def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    return [
        "| " + " | ".join(cell(h) for h in header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(cell(c) for c in row) + " |" for row in rows),
        "",
    ]


def _run_lines(report: EvalReport) -> list[str]:
    run = report.run
    return [
        f"- date: {run.date}; git commit: {run.git_commit or 'unknown'}; corpus hash: {run.corpus_hash} "
        f"(index generation {run.index_generation}, {run.chunks} chunks)",
        f"- mode: {run.mode}; llm: {run.llm}; embedder: {run.embedder}; run time: {run.seconds:.0f} s",
        "- machine: " + ", ".join(f"{k}={v}" for k, v in run.machine.items()),
        *(f"- baseline `{name}`: {description}" for name, description in run.baselines.items()),
    ]


def render_markdown(report: EvalReport, plot_dir: str = "plots") -> str:
    """report.md (plots as PNG files in `plot_dir`, next to it)."""
    lines = ["# Evaluation report", "", *_run_lines(report), "", "## Splits", ""]
    lines += [
        f"- **{s.name}** ({s.path}, {s.n_cases} cases, {s.n_answerable} answerable): {s.role}"
        for s in report.splits.values()
    ]
    lines += ["", "## Reading the numbers", "", *(f"- {note}" for note in report.run.notes), ""]
    for split, summary in report.splits.items():
        lines += [f"## {split}: assistant vs baselines", ""]
        lines += _md_table(
            ["metric", *report.systems], [[label, *cells] for label, cells in metric_rows(report, split)]
        )
        lines += [supported_rate_note(summary), "", f"### {split}: by tag", ""]
        header, rows = tag_rows(report, split)
        lines += _md_table(header, rows)
        lines += [f"![per-tag bars]({plot_dir}/tags-{split}.png)", "", f"### {split}: latency (ms)", ""]
        lines += _md_table(["stage", "p50", "p95", "n"], latency_rows(summary))
        failing = report.failing_cases(split)
        lines += [f"### {split}: failing cases ({len(failing)})", ""]
        lines += [f"- `{c.id}` {c.question} — {case_summary(c)}" for c in failing]
        lines.append("")
    lines += [
        "## Plots",
        "",
        f"![latency]({plot_dir}/latency.png)",
        "",
        f"![confidence vs correctness]({plot_dir}/confidence.png)",
        "",
        "## Reliability of the gate (all splits)",
        "",
        *_md_table(RELIABILITY_HEADER, reliability_rows(report)),
        f"![reliability curve]({plot_dir}/reliability.png)",
        "",
        "## Configuration",
        "",
        "```",
    ]
    lines += [f"{key} = {value!r}" for key, value in report.run.settings.items()]
    lines += ["```", ""]
    return "\n".join(lines)


# HTML ------------------------------------------------------------------------------------------
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
blockquote { margin: 0.3rem 0; padding-left: 0.6rem; border-left: 3px solid #bbb; white-space: pre-wrap; }
details { margin: 0.3rem 0; } summary { cursor: pointer; }
img { max-width: 100%; }
.note { color: #555; font-size: 0.9rem; }
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def case_html(case: CaseRecord) -> str:
    """One failing case, every corpus or user text escaped."""
    parts = [f"<details><summary><code>{_e(case.id)}</code> {_e(case.question)} — {_e(case_summary(case))}</summary>"]
    if case.history:
        parts.append(
            "<p><b>history</b></p>"
            + "".join(f"<blockquote><b>{_e(t.role)}</b>: {_e(t.content)}</blockquote>" for t in case.history)
        )
    parts.append(f"<p><b>standalone query</b>: {_e(case.standalone_query)}</p>")
    parts.append(
        "<p><b>expected quotes</b></p>" + "".join(f"<blockquote>{_e(q)}</blockquote>" for q in case.expected_quotes)
    )
    parts.append(f"<p><b>answer</b></p><blockquote>{_e(case.answer)}</blockquote>")
    parts.append(
        "".join(
            f"<blockquote>[{c.n}] {_e(c.quote)} <small>({_e(c.chunk_id)}, {c.start}-{c.end})</small></blockquote>"
            for c in case.citations
        )
    )
    parts.append(
        _html_table(
            ["rank", "chunk", "dense", "BM25", "covers expected"],
            [
                [
                    str(h.rank),
                    h.chunk_id,
                    str(h.dense_rank or "-"),
                    str(h.lexical_rank or "-"),
                    "yes" if h.covers_expected else "",
                ]
                for h in case.hits
            ],
        )
    )
    return "".join(parts) + "</details>"


def render_html(report: EvalReport, figures: dict[str, bytes] | None = None) -> str:
    """report.html: one self-contained page, plots embedded as base64 PNG."""
    figures = figures if figures is not None else plots(report)
    md_run = _run_lines(report)
    body = [
        "<h1>Evaluation report</h1>",
        "<ul>",
        *(f"<li>{_e(line[2:])}</li>" for line in md_run),
        "</ul>",
        "<h2>Splits</h2><ul>",
    ]
    body += [
        f"<li><b>{_e(s.name)}</b> ({_e(s.path)}, {s.n_cases} cases, {s.n_answerable} answerable): {_e(s.role)}</li>"
        for s in report.splits.values()
    ]
    body += [
        "</ul><h2>Reading the numbers</h2><ul>",
        *(f"<li class='note'>{_e(n)}</li>" for n in report.run.notes),
        "</ul>",
    ]
    for split, summary in report.splits.items():
        body.append(f"<h2>{_e(split)}: assistant vs baselines</h2>")
        body.append(
            _html_table(["metric", *report.systems], [[label, *cells] for label, cells in metric_rows(report, split)])
        )
        body.append(f"<p class='note'>{_e(supported_rate_note(summary))}</p>")
        header, rows = tag_rows(report, split)
        body += [
            f"<h3>{_e(split)}: by tag</h3>",
            _html_table(header, rows),
            _img(figures[f"tags-{split}.png"], f"per-tag bars {split}"),
        ]
        body += [
            f"<h3>{_e(split)}: latency (ms)</h3>",
            _html_table(["stage", "p50", "p95", "n"], latency_rows(summary)),
        ]
        failing = report.failing_cases(split)
        body.append(f"<h3>{_e(split)}: failing cases ({len(failing)})</h3>")
        body += [case_html(c) for c in failing]
    body += [
        "<h2>Plots</h2>",
        _img(figures["latency.png"], "latency histogram"),
        _img(figures["confidence.png"], "confidence vs correctness"),
        "<h2>Reliability of the gate (all splits)</h2>",
        _html_table(RELIABILITY_HEADER, reliability_rows(report)),
        _img(figures["reliability.png"], "reliability curve of the answerability gate"),
        "<h2>Configuration</h2>",
        _html_table(["setting", "value"], [[k, repr(v)] for k, v in report.run.settings.items()]),
    ]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Evaluation report</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )


def write_reports(report: EvalReport, out_dir: Path) -> list[Path]:
    """Write report.json, report.md (with plots/*.png) and report.html into `out_dir`."""
    plot_dir = out_dir / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    figures = plots(report)
    for name, png in figures.items():
        (plot_dir / name).write_bytes(png)
    paths = [out_dir / "report.json", out_dir / "report.md", out_dir / "report.html"]
    paths[0].write_text(report.model_dump_json(indent=1) + "\n", encoding="utf-8")
    paths[1].write_text(render_markdown(report), encoding="utf-8")
    paths[2].write_text(render_html(report, figures), encoding="utf-8")
    return paths
