"""The evaluation report's renderings: its tables, report.md, and report.html (from a Jinja2 template)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import jinja2

from ptce_assistant.config import PROJECT_ROOT
from ptce_assistant.evals.metrics import HEADLINE_METRICS, LOWER_IS_BETTER, MetricValue
from ptce_assistant.evals.plots import RELIABILITY_HEADER, plots, reliability_rows
from ptce_assistant.evals.records import ASSISTANT, CaseRecord, EvalReport, SplitSummary


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
    answer = case.answer
    verdict = "abstained" if answer.abstained else f"answered with {len(answer.citations)} citation(s)"
    return f"{verdict}, confidence {answer.confidence:.2f}; fails {', '.join(case.failed_metrics)}"


def hit_rows(case: CaseRecord) -> list[list[str]]:
    """The assistant's passages for a case: rank, chunk, dense rank, BM25 rank, whether it covers an expected quote."""
    return [
        [
            str(h.rank),
            h.chunk_id,
            str(h.dense_rank or "-"),
            str(h.lexical_rank or "-"),
            "yes" if h.covers_expected else "",
        ]
        for h in case.hits
    ]


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
@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("ptce_assistant.evals", "templates"),
        autoescape=True,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template("report.html.j2")


def _split_section(report: EvalReport, split: str) -> dict[str, object]:
    summary = report.splits[split]
    tag_header, tag_table = tag_rows(report, split)
    return {
        "name": split,
        "metric_rows": [[label, *cells] for label, cells in metric_rows(report, split)],
        "supported_rate_note": supported_rate_note(summary),
        "tag_header": tag_header,
        "tag_rows": tag_table,
        "latency_rows": latency_rows(summary),
        "failing": report.failing_cases(split),
    }


def render_html(report: EvalReport, figures: dict[str, bytes] | None = None) -> str:
    """report.html: one self-contained page, plots embedded as base64 PNG, every corpus or user text escaped."""
    figures = figures if figures is not None else plots(report)
    splits = [_split_section(report, split) for split in report.splits]
    return _template().render(
        report=report,
        run_lines=[line[2:] for line in _run_lines(report)],
        metric_header=["metric", *report.systems],
        splits=splits,
        figures={name: base64.b64encode(png).decode() for name, png in figures.items()},
        reliability_header=RELIABILITY_HEADER,
        reliability_rows=reliability_rows(report),
        settings_rows=[[k, repr(v)] for k, v in report.run.settings.items()],
        case_summary=case_summary,
        hit_rows=hit_rows,
    )


def default_run_folder(report: EvalReport) -> Path:
    """evals/runs/DATE-MODE: where `ptce eval` writes a run's reports when no --out is given."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return PROJECT_ROOT / "evals" / "runs" / f"{stamp}-{report.run.mode}"


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
