"""Cold start: from process start to the first search and to the first answer, in a fresh interpreter.

Each measurement spawns a new Python process (interpreter start, imports, model and index loading
are all counted) over an index already built on disk:
- ours, first search: `Assistant(settings).search(question)`;
- ours, first answer: `Assistant(settings).ask(question)` (extractive);
- naive, first search: load the files, split them, embed them into an in-memory Chroma, search (the
  tutorial pipeline keeps nothing on disk, so it embeds at every start);
- naive, first answer: the same, then load the local model and stream its answer (first token and
  complete answer). Skipped with --no-llm;
- ours with torch: the first answer with PTCE_QUERY_RUNTIME=torch (questions embedded by
  sentence-transformers, as before the ONNX export), beside the default ONNX Runtime path;
- the app: `ptce app` spawned, a headless Chromium (already running, as a user's browser is) opens the
  page as soon as the port accepts connections; first paint = the question box is shown, first answer =
  an extractive answer's first source card is shown after the first question is sent as soon as the box
  appears; then, the app loaded, five
  questions each in a new conversation: Enter pressed -> first source card in the DOM, timed in the page.
  Both runtimes. Skipped with --no-app.

    .venv/bin/python benchmarks/cold_start.py [--runs 3] [--no-llm] [--no-app]
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
JOBS = ("ours-search", "ours-ask", "ours-ask-torch", "naive-search", "naive-ask")
RUNTIMES = ("onnx", "torch")


def child(job: str, question: str) -> None:
    """One cold start; reports epoch timestamps of its milestones."""
    from ptce_assistant.assistant import Assistant

    settings = bundled_settings()
    if job == "ours-ask-torch":
        settings = settings.model_copy(update={"query_runtime": "torch"})
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


def answers_once_loaded(tab: Any) -> list[float]:
    """Milliseconds from Enter to the first source card in the DOM, for each question of the browser tests."""
    from browser import QUESTIONS, STEP_TIMEOUT_MS, WATCH_FIRST_CARD, new_conversation, submit

    timings = []
    for question in QUESTIONS:
        new_conversation(tab)
        tab.evaluate(WATCH_FIRST_CARD)
        submit(tab, question)
        tab.locator("#t1-source-1").wait_for(state="visible", timeout=STEP_TIMEOUT_MS)
        timings.append(tab.evaluate("window.__ptceShown - window.__ptceSent"))
    return timings


def _listens(port: int) -> bool:
    """Something accepts connections on 127.0.0.1:`port`."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
    except OSError:
        return False
    return True


def app_cold_start(runtime: str, browser: Any, work: Path) -> tuple[float, float, list[float]]:
    """Milliseconds from spawning `ptce app` to its first paint and to its first answer in the browser, then
    the answers once loaded."""
    import os
    import shutil
    import subprocess
    import sys

    from browser import chat_box
    from servers import free_port, stop_group

    settings = bundled_settings()
    port = free_port()
    env = {
        **os.environ,
        "PTCE_CORPUS_DIR": str(settings.corpus_dir),
        "PTCE_INDEX_DIR": str(settings.index_dir),
        "PTCE_AUDIT_DB": str(work / "audit.sqlite3"),
        "PTCE_MODE": "extractive",
        "PTCE_QUERY_RUNTIME": runtime,
    }
    work.mkdir(parents=True, exist_ok=True)
    tab = browser.new_page()
    spawned = time.time()
    with (work / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "ptce_assistant.cli", "app", "--port", str(port)],
            env=env,
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # The browser opens the page once the server listens. Polled with a bare connect: retrying the
        # navigation itself cost Chromium ~20 failed loads, 0.4-0.9 s of CPU taken from the starting server.
        while not _listens(port):
            if server.poll() is not None or time.time() - spawned > 300:
                raise RuntimeError(f"ptce app did not start (see {work / 'server.log'})")
            time.sleep(0.02)
        tab.goto(f"http://127.0.0.1:{port}", timeout=60_000)
        box = chat_box(tab)
        box.wait_for(timeout=300_000)
        painted = time.time()
        box.fill(dev_cases()[0].question)
        box.press("Enter")
        tab.locator("#t1-source-1").wait_for(timeout=300_000)
        answered = time.time()
        loaded = answers_once_loaded(tab)
    finally:
        tab.close()
        stop_group(server)
        shutil.rmtree(work, ignore_errors=True)
    return (painted - spawned) * 1000, (answered - spawned) * 1000, loaded


def app_runs(runs: int) -> dict[str, list[float]]:
    """`runs` cold starts of the app per runtime, interleaved, in one headless Chromium."""
    import sys

    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(SCRIPT.parents[1] / "tests"))  # the browser tests' helpers
    from browser import CHROMIUM, CHROMIUM_FLAGS

    samples: dict[str, list[float]] = {f"app-{k}-{r}": [] for r in RUNTIMES for k in ("paint", "answer", "loaded")}
    work = SCRIPT.parent / "work" / "app-cold"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        try:
            for _ in range(runs):
                for runtime in RUNTIMES:
                    paint, answer, loaded = app_cold_start(runtime, browser, work)
                    samples[f"app-paint-{runtime}"].append(paint)
                    samples[f"app-answer-{runtime}"].append(answer)
                    samples[f"app-loaded-{runtime}"] += loaded
        finally:
            browser.close()
    return samples


def versus_torch(metric: str, onnx: dict[str, Any], torch: dict[str, Any]) -> Row:
    """A row of ours only: questions embedded by ONNX Runtime (default) vs by torch, and the speed-up."""
    speedup = times(ratio(torch["p50"], onnx["p50"]))
    return Row(f"{metric}: ONNX Runtime vs torch (PTCE_QUERY_RUNTIME)", f"{pair(onnx)} vs {pair(torch)} ({speedup})")


def main() -> None:
    """Spawn each job `--runs` times, interleaved."""
    cli = parser("Cold start to the first search and the first answer: the assistant vs the naive pipeline.", 3)
    cli.add_argument("--no-llm", action="store_true", help="skip the naive pipeline's LLM answer (slow)")
    cli.add_argument("--no-app", action="store_true", help="skip the app's cold starts in Chromium")
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
    if not args.no_app:
        samples.update(app_runs(args.runs))
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
    ask, ask_torch = found_stats["ours-ask"], found_stats["ours-ask-torch"]
    rows.append(versus_torch("cold start → first extractive answer p50 / p95 (ms)", ask, ask_torch))
    if not args.no_app:
        for kind, label in (("paint", "first paint"), ("answer", "first answer")):
            onnx, torch = found_stats[f"app-{kind}-onnx"], found_stats[f"app-{kind}-torch"]
            rows.append(versus_torch(f"app cold start → {label} in Chromium p50 / p95 (ms)", onnx, torch))
        onnx, torch = found_stats["app-loaded-onnx"], found_stats["app-loaded-torch"]
        loaded = "app loaded: Enter → extractive answer's first card in Chromium p50 / p95 (ms)"
        rows.append(versus_torch(loaded, onnx, torch))
    recorder.finish(results, rows, runs=f"{args.runs} processes each")


if __name__ == "__main__":
    main()
