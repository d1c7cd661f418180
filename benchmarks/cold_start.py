"""Cold start: from process start to the first search and to the first answer, in a fresh interpreter.

Each measurement spawns a new Python process (interpreter start, imports, model and index loading
are all counted) over an index already built on disk:
- ours, first search: `Assistant(settings).search(question)`;
- ours, first answer: `Assistant(settings).ask(question)` (extractive);
- naive, first search: load the files, split them, embed them into an in-memory Chroma, search (the
  tutorial pipeline keeps nothing on disk, so it embeds at every start);
- naive, first answer: the same, then load the local model and stream its answer (first token and
  complete answer). Skipped with --no-llm.

    .venv/bin/python benchmarks/cold_start.py [--runs 3] [--no-llm]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from harness import (
    NaiveRag,
    Recorder,
    Row,
    bundled_settings,
    child_report,
    dev_cases,
    pair,
    parser,
    prepared_assistant,
    ratio,
    run_child,
    stats,
    times,
)

SCRIPT = Path(__file__).resolve()
JOBS = ("ours-search", "ours-ask", "naive-search", "naive-ask")


def child(job: str, question: str) -> None:
    """One cold start; reports epoch timestamps of its milestones."""
    from ptce_assistant.assistant import Assistant

    settings = bundled_settings()
    if job.startswith("ours"):
        assistant = Assistant(settings)
        if job == "ours-search":
            assert assistant.search(question).hits
        else:
            assert not assistant.ask(question, mode="extractive").abstained
        child_report(done_at=time.time())
        return
    naive = NaiveRag(settings)
    if job == "naive-search":
        assert naive.rank(question)
        child_report(done_at=time.time())
        return
    started = time.time()
    generation = naive.answer(question)
    assert generation.first_token is not None
    child_report(first_token_at=started + generation.first_token, done_at=started + generation.total)


def main() -> None:
    """Spawn each job `--runs` times, interleaved."""
    cli = parser("Cold start to the first search and the first answer: the assistant vs the naive pipeline.", 3)
    cli.add_argument("--no-llm", action="store_true", help="skip the naive pipeline's LLM answer (slow)")
    cli.add_argument("--child", choices=JOBS, help=argparse.SUPPRESS)
    args = cli.parse_args()
    question = dev_cases()[0].question
    if args.child:
        child(args.child, question)
        return
    recorder = Recorder.start("cold_start", args)
    prepared_assistant()  # the index exists before any cold start
    jobs = [j for j in JOBS if not (args.no_llm and j == "naive-ask")]
    samples: dict[str, list[float]] = {job: [] for job in jobs}
    samples["naive-first-token"] = []
    memory: dict[str, list[float]] = {job: [] for job in jobs}
    for _ in range(args.runs):
        for job in jobs:
            found = run_child(SCRIPT, ["--child", job])
            samples[job].append((found["done_at"] - found["spawned_at"]) * 1000)
            memory[job].append(found["max_rss_mb"])
            if "first_token_at" in found:
                samples["naive-first-token"].append((found["first_token_at"] - found["spawned_at"]) * 1000)
    found_stats = {job: stats(values) for job, values in samples.items()}
    results: dict[str, Any] = {
        "ms": found_stats,
        "max_rss_mb": {job: stats(values) for job, values in memory.items()},
        "question": question,
    }
    rows = [
        Row(
            "cold start → first search p50 / p95 (ms)",
            pair(found_stats["ours-search"]),
            pair(found_stats["naive-search"]),
            times(ratio(found_stats["naive-search"]["p50"], found_stats["ours-search"]["p50"])),
        )
    ]
    if "naive-ask" in jobs:
        ours_ask = found_stats["ours-ask"]
        rows += [
            Row(
                "cold start → first answer p50 / p95 (ms): extractive vs naive+LLM complete",
                pair(ours_ask),
                pair(found_stats["naive-ask"]),
                times(ratio(found_stats["naive-ask"]["p50"], ours_ask["p50"])),
            ),
            Row(
                "cold start → first answer p50 / p95 (ms): extractive vs naive+LLM first token",
                pair(ours_ask),
                pair(found_stats["naive-first-token"]),
                times(ratio(found_stats["naive-first-token"]["p50"], ours_ask["p50"])),
            ),
        ]
    else:
        rows.append(Row("cold start → first extractive answer p50 / p95 (ms)", pair(found_stats["ours-ask"])))
    recorder.finish(results, rows, runs=f"{args.runs} processes each")


if __name__ == "__main__":
    main()
