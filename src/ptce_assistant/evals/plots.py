"""The evaluation report's figures: PNG plots (per-tag bars, latency, confidence, reliability) and the gate's
reliability rows."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from itertools import pairwise
from typing import Any

from ptce_assistant.evals.records import ASSISTANT, CaseRecord, EvalReport


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
            timings = [c.answer.timings_ms for c in report.cases if c.split == split]
            totals = [t["total"] for t in timings if "total" in t]
            axes.hist(totals, bins=20, alpha=0.6, label=split)
        axes.set_xlabel("total time per question (ms)")
        axes.set_ylabel("cases")
        axes.set_title("Latency of ask()")
        axes.legend()

    return _png(draw, (7, 4))


def is_correct(case: CaseRecord) -> bool:
    """Right decision and, when answering an answerable case, the expected evidence cited."""
    if not case.answerable:
        return case.answer.abstained
    return not case.answer.abstained and case.scores.get("evidence_hit") == 1.0


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
                [c.answer.confidence for c in cases],
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
        cases = [c for c in report.cases if low <= c.answer.confidence < high or c.answer.confidence == high == 1.0]
        if not cases:
            rows.append([f"{low:.1f}-{high:.1f}", "0", "n/a", "n/a", "n/a"])
            continue
        mean = sum(c.answer.confidence for c in cases) / len(cases)
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
