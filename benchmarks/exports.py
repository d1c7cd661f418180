"""Exports and follow-ups: what « Exporter » and « Pour aller plus loin » cost, per format, in one run.

Times `Assistant.export` for one answer and for a conversation of the dev set's first answerable
questions, `Assistant.export_levers` for the lever sheet, each in Markdown, Word and PDF side by side,
and `Assistant.follow_ups` on every answer. There is no naive counterpart: the naive pipeline exports
nothing.

    .venv/bin/python benchmarks/exports.py [--runs 5] [--turns 5]
"""

from __future__ import annotations

from typing import Any, get_args

from harness import Recorder, Row, dev_cases, ms, parser, prepared_assistant, stats, timed

from ptce_assistant.exports import ExportFormat
from ptce_assistant.levers import recommend


def main() -> None:
    """Each export `--runs` times per format (formats alternate within a run), then the follow-ups."""
    found = parser("Export and follow-up times per format.", 5)
    found.add_argument("--turns", type=int, default=5, help="answers in the exported conversation (default 5)")
    args = found.parse_args()
    recorder = Recorder.start("exports", args)
    assistant = prepared_assistant()
    questions = [c.question for c in dev_cases() if c.answerable and not c.history][: args.turns]
    answers = [assistant.ask(q) for q in questions]
    sheet = recommend(assistant, "rural", "emergence")
    formats: tuple[ExportFormat, ...] = get_args(ExportFormat)
    jobs = {
        "answer": lambda fmt: assistant.export(answers[:1], fmt),
        "conversation": lambda fmt: assistant.export(answers, fmt),
        "sheet": lambda fmt: assistant.export_levers(sheet, "territoire rural, émergence du projet", fmt),
    }
    for job in jobs.values():  # warm-up: imports, fonts
        for fmt in formats:
            job(fmt)
    samples: dict[str, dict[str, list[float]]] = {name: {fmt: [] for fmt in formats} for name in jobs}
    sizes: dict[str, dict[str, int]] = {name: {} for name in jobs}
    for _ in range(args.runs):
        for name, job in jobs.items():
            for fmt in formats:
                data, elapsed = timed(job, fmt)
                samples[name][fmt].append(elapsed)
                sizes[name][fmt] = len(data)
    follow_ms = [timed(assistant.follow_ups, a)[1] for _ in range(args.runs) for a in answers]
    results: dict[str, Any] = {
        name: {fmt: {**stats(samples[name][fmt]), "bytes": sizes[name][fmt]} for fmt in formats} for name in jobs
    }
    results |= {
        "follow_ups_ms": stats(follow_ms),
        "questions": questions,
        "citations": sum(len(a.citations) for a in answers),
    }

    def row(name: str, label: str) -> Row:
        medians = " · ".join(ms(results[name][fmt]["p50"]) for fmt in formats)
        return Row(f"{label} p50 (ms): md · docx · pdf", medians)

    recorder.finish(
        results,
        [
            row("answer", "export one answer"),
            row("conversation", f"export a {len(answers)}-answer conversation ({results['citations']} quotes)"),
            row("sheet", "export the lever sheet"),
            Row(
                "follow-up suggestions p50 / p95 (ms)",
                f"{ms(results['follow_ups_ms']['p50'])} / {ms(results['follow_ups_ms']['p95'])}",
            ),
        ],
        runs=f"{args.runs}×3 formats",
    )


if __name__ == "__main__":
    main()
