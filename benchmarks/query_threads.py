"""ONNX Runtime threads for questions: one question alone, and four embedded at once, per PTCE_QUERY_THREADS.

Each setting runs in a fresh process, alternated `--runs` times, once on a quiet machine and once with
another process spinning on one core (as another app, an ingestion or a test run would). A child embeds
every dev question's search text (the question and its thesaurus words, as `search` embeds it) one at
a time, then four threads embed all of them at once; the question-vector cache is bypassed, so every
question is new.

    .venv/bin/python benchmarks/query_threads.py [--runs 2] [--settings 1,2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from harness import Recorder, Row, bundled_settings, child_report, dev_cases, pair, parser, run_child, stats, times

SCRIPT = Path(__file__).resolve()
USERS = 4


def measure(threads: int) -> None:
    """Child: latency of each question alone, then questions/s with USERS threads at once."""
    from ptce_assistant.embeddings import get_embedder
    from ptce_assistant.retrieval import expanded_query

    settings = bundled_settings().model_copy(update={"query_threads": threads, "query_runtime": "onnx"})
    encoder = get_embedder(settings)._query_encoder
    if encoder is None:
        raise SystemExit("no ONNX export: run `ptce doctor --prepare`")
    texts = ["query: " + expanded_query(case.question) for case in dev_cases()]
    encoder.encode(texts[:8])  # warm-up
    alone: list[float] = []
    for text in texts * 2:
        started = time.perf_counter()
        encoder.encode([text])
        alone.append((time.perf_counter() - started) * 1000)

    def user() -> None:
        for text in texts:
            encoder.encode([text])

    users = [threading.Thread(target=user) for _ in range(USERS)]
    started = time.perf_counter()
    for thread in users:
        thread.start()
    for thread in users:
        thread.join()
    elapsed = time.perf_counter() - started
    child_report(alone_ms=alone, together_per_s=round(USERS * len(texts) / elapsed, 1))


def per_run(values: list[float]) -> str:
    """Each run's value, for the table."""
    return ", ".join(f"{value:.0f}" for value in values)


def spinner() -> subprocess.Popen[bytes]:
    """Another process keeping one core busy."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main() -> None:
    """Alternate the settings in fresh processes, quiet then with one core busy."""
    cli = parser("Question embedding: PTCE_QUERY_THREADS settings, alone and four at once.", 2)
    cli.add_argument("--settings", default="1,2", help="comma-separated PTCE_QUERY_THREADS values")
    cli.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = cli.parse_args()
    if args.child is not None:
        measure(args.child)
        return
    recorder = Recorder.start("query_threads", args)
    settings = [int(s) for s in args.settings.split(",")]
    found: dict[str, dict[int, list[dict[str, Any]]]] = {"quiet": {}, "busy": {}}
    for _ in range(args.runs):
        for condition in found:
            for threads in settings:
                busy = spinner() if condition == "busy" else None
                try:
                    found[condition].setdefault(threads, []).append(run_child(SCRIPT, ["--child", str(threads)]))
                finally:
                    if busy:
                        busy.kill()
                        busy.wait()
    results: dict[str, Any] = {}
    rows: list[Row] = []
    base = settings[0]
    for condition, by_setting in found.items():
        merged: dict[int, dict[str, Any]] = {
            threads: {
                "alone_ms": stats([sample for run in runs for sample in run["alone_ms"]]),
                "alone_p50_per_run": [stats(run["alone_ms"])["p50"] for run in runs],
                "together_per_s": [run["together_per_s"] for run in runs],
            }
            for threads, runs in by_setting.items()
        }
        results[condition] = merged
        for threads in settings[1:]:
            ours, theirs = merged[threads], merged[base]
            rows.append(
                Row(
                    f"{condition}: a question alone, p50 / p95 (ms), PTCE_QUERY_THREADS={threads} vs {base}",
                    f"{pair(ours['alone_ms'])} vs {pair(theirs['alone_ms'])}",
                    ratio=times(round(theirs["alone_ms"]["p50"] / ours["alone_ms"]["p50"], 2)),
                )
            )
            rows.append(
                Row(
                    f"{condition}: {USERS} users embedding new questions at once (questions/s per run), "
                    f"PTCE_QUERY_THREADS={threads} vs {base}",
                    f"{per_run(ours['together_per_s'])} vs {per_run(theirs['together_per_s'])}",
                    ratio=times(round(sum(ours["together_per_s"]) / sum(theirs["together_per_s"]), 2)),
                )
            )
    recorder.finish(results, rows, runs=f"{args.runs} processes each")


if __name__ == "__main__":
    main()
