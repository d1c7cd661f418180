"""Crash safety: `ptce ingest` killed with SIGKILL mid-run never leaves a broken or half-updated index.

A short version of benchmarks/crash_loop.py (5 kills instead of 30+): real `ptce ingest` processes,
killed after seeded random delays counted from the moment they start building.
"""

from __future__ import annotations

from pathlib import Path

import crash_loop

from conftest import make_settings
from ptce_assistant.assistant import Assistant
from ptce_assistant.index import current_generation


def test_sigkill_mid_ingest_never_breaks_the_index(assistant: Assistant, tmp_path: Path) -> None:
    crash_loop.make_corpus(tmp_path / "corpus", extra_files=30, seed=7)
    settings = make_settings(tmp_path, corpus_dir=tmp_path / "corpus")
    helper = Assistant(settings)
    helper.__dict__["embedder"] = assistant.embedder
    first = helper.ingest()  # in-process, with the loaded model: the killed processes update this index
    assert not first.rejected and first.chunks_total > 40

    report = crash_loop.crash_loop(
        tmp_path,
        assistant.embedder,
        kills=5,
        seed=7,
        build_seconds=first.seconds,
        startup_seconds=0.0,
        max_runs=8,
        rebuild_every=4,
        only_from_staging=True,
        log=print,
    )
    assert report.failures == [], report.as_dict()
    assert report.kills >= 3, report.as_dict()  # the runs were really interrupted, mostly while building

    # The checker is not vacuous: it flags what a non-atomic ingestion would leave after a kill.
    state = crash_loop.corpus_state(tmp_path / "corpus")
    assert crash_loop.check_index(settings, assistant.embedder, [state]) == []
    chunks = tmp_path / "index" / str(current_generation(tmp_path / "index")) / "chunks.jsonl"
    lines = chunks.read_text(encoding="utf-8").splitlines(keepends=True)
    chunks.write_text("".join(lines[:-3]), encoding="utf-8")  # as if killed while writing in place
    problems = crash_loop.check_index(settings, assistant.embedder, [state])
    assert any("vectors for" in p for p in problems) and any("lexical index" in p for p in problems)
    assert any("manifest says" in p for p in problems)
