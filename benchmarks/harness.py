"""Shared parts of the benchmarks: settings, the naive pipeline, child processes, timing and recording.

Every benchmark goes through the `Assistant` facade; the naive LangChain pipeline it is compared with
is the eval suite's `NaiveLangChainBaseline` (same embedder), and its "ask" stuffs that baseline's
top-4 chunks into the project's own generative chain and local model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from ptce_assistant.assistant import Assistant
from ptce_assistant.config import PROJECT_ROOT, Settings
from ptce_assistant.evals.baselines import NAIVE_CHUNK_SIZE, NaiveLangChainBaseline, Passage
from ptce_assistant.evals.dataset import EvalCase, load_cases
from ptce_assistant.evals.metrics import covers_any, percentiles
from ptce_assistant.evals.runner import machine

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
WORK_DIR = BENCH_DIR / "work"  # gitignored: indexes and generated corpora
README = BENCH_DIR / "README.md"
DEV_SET = PROJECT_ROOT / "evals" / "dev.jsonl"
BUNDLED_CORPUS = PROJECT_ROOT / "corpus"


# Settings and prepared indexes -----------------------------------------------------------------
def bench_settings(work: Path, corpus_dir: Path = BUNDLED_CORPUS, **overrides: Any) -> Settings:
    """Settings whose index and audit log live under `work` (PTCE_* variables still apply, e.g. a Chroma host)."""
    values: dict[str, Any] = {
        "corpus_dir": corpus_dir,
        "index_dir": work / "index",
        "audit_db": work / "audit.sqlite3",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def bundled_settings() -> Settings:
    """Settings of the benchmark index over the bundled corpus (built once under benchmarks/work/)."""
    return bench_settings(WORK_DIR / "bundled")


def prepared_assistant(settings: Settings | None = None) -> Assistant:
    """An Assistant whose index is up to date (an incremental ingest: a no-op when nothing changed)."""
    assistant = Assistant(settings or bundled_settings())
    report = assistant.ingest()
    if report.rejected:
        raise SystemExit(f"rejected documents: {report.rejected}")
    return assistant


def dev_cases(path: Path = DEV_SET) -> list[EvalCase]:
    """The dev evaluation cases."""
    return load_cases(path)


# The naive pipeline ----------------------------------------------------------------------------
def corpus_source(settings: Settings) -> Any:
    """What NaiveLangChainBaseline reads from an Assistant (document texts, embedder), read from the files.

    The tutorial pipeline loads the files itself: it does not pay for opening the project's index. It
    embeds with the same model through sentence-transformers on torch, as the tutorial does, not with
    the assistant's ONNX export (same vectors, cosine >= 0.9999).
    """
    from ptce_assistant.documents import discover, load_document
    from ptce_assistant.embeddings import get_embedder

    documents = {d.doc_id: d for d in (load_document(p, settings.corpus_dir) for p in discover([settings.corpus_dir]))}
    index = SimpleNamespace(
        manifest=SimpleNamespace(documents=documents), document_text=lambda doc_id: documents[doc_id].text
    )
    embedder = get_embedder(settings.model_copy(update={"query_runtime": "torch"}))
    return SimpleNamespace(index=index, embedder=embedder)


@dataclass
class Generation:
    """Timings of one streamed LLM answer (seconds from the call; `total` includes any verification)."""

    text: str
    first_token: float | None
    last_token: float | None
    total: float
    tokens: int

    @property
    def tokens_per_second(self) -> float | None:
        """Decoding speed between the first and the last token."""
        if self.first_token is None or self.last_token is None or self.tokens < 2:
            return None
        return (self.tokens - 1) / (self.last_token - self.first_token)


class NaiveRag:
    """The tutorial RAG: NaiveLangChainBaseline's top-4 1000-character chunks stuffed into the project's chain."""

    def __init__(self, settings: Settings, source: Assistant | None = None) -> None:
        self.settings = settings
        # NaiveLangChainBaseline only reads `.index` (texts, manifest) and `.embedder` of its argument.
        self.baseline = NaiveLangChainBaseline(cast(Assistant, source or corpus_source(settings)))

    def rank(self, question: str) -> list[Passage]:
        """The top-4 chunks by cosine."""
        return self.baseline.rank(question)

    def answer(self, question: str) -> Generation:
        """Retrieve, then stream the local model's answer over the whole chunks (no gate, no verification)."""
        from ptce_assistant.answering.generative import build_chain, format_passages, prompt_inputs
        from ptce_assistant.chunking import Chunk
        from ptce_assistant.config import Lang
        from ptce_assistant.lexical import detect_language
        from ptce_assistant.llm import exclusive, get_chat_model

        started = time.perf_counter()
        chunks = [
            Chunk(chunk_id=p.passage_id, doc_id="", title="", text=p.text, breadcrumb=[], start=0, end=len(p.text))
            for p in self.rank(question)
        ]
        lang: Lang = "en" if detect_language(question) == "en" else "fr"
        inputs = {**prompt_inputs(question, chunks, lang), "passages": format_passages(chunks, NAIVE_CHUNK_SIZE)}
        model = get_chat_model(self.settings, "local")
        pieces: list[str] = []
        first = last = None
        with exclusive(model):
            for token in build_chain(model, lang).stream(inputs):
                last = time.perf_counter() - started
                first = first if first is not None else last
                pieces.append(token)
        return Generation("".join(pieces), first, last, time.perf_counter() - started, len(pieces))

    def close(self) -> None:
        """Drop the in-memory collection."""
        self.baseline.close()


def evidence_recall(ranked: Sequence[Sequence[str]], cases: Sequence[EvalCase]) -> float:
    """Share of answerable cases whose passages cover an expected quote (the project's hit rule)."""
    pairs = [(texts, c) for texts, c in zip(ranked, cases, strict=True) if c.answerable]
    return sum(any(covers_any(t, c.expected_quotes) for t in texts) for texts, c in pairs) / max(len(pairs), 1)


# Child processes -------------------------------------------------------------------------------
def child_report(**values: Any) -> None:
    """Print a child's result as the last stdout line, with its peak resident memory (and its workers')."""
    values["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB
    values["worker_max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    print(json.dumps(values), flush=True)


def run_child(script: Path, args: Sequence[str], timeout: float = 1800) -> dict[str, Any]:
    """Run `script` in a fresh interpreter; returns its JSON report plus `spawned_at` (epoch seconds).

    The child's stderr (progress, warnings) goes to ours.
    """
    spawned = time.time()
    done = subprocess.run(
        [sys.executable, str(script), *args], stdout=subprocess.PIPE, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script.name} {' '.join(args)} failed with status {done.returncode} (stderr above)")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    report["spawned_at"] = spawned
    return report


# Timing and recording --------------------------------------------------------------------------
def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """(result, milliseconds) of one call."""
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, (time.perf_counter() - started) * 1000


def stats(samples: Sequence[float]) -> dict[str, float | int | None]:
    """Median (p50), p95 and count of samples (linear interpolation, as the eval report)."""
    found = percentiles(list(samples))
    return {"p50": found.p50, "p95": found.p95, "n": found.n}


def ratio(slow: float | None, fast: float | None) -> float | None:
    """How many times `fast` beats `slow` (None when a value is missing)."""
    return round(slow / fast, 2) if slow and fast else None


def load_average() -> list[float]:
    """1, 5 and 15-minute load averages (other processes make timings noisy)."""
    return [round(x, 2) for x in os.getloadavg()]


def parser(description: str, default_runs: int) -> argparse.ArgumentParser:
    """The common options: --runs N and --out FILE."""
    found = argparse.ArgumentParser(description=description)
    found.add_argument("--runs", type=int, default=default_runs, help=f"repetitions (default {default_runs})")
    found.add_argument("--out", type=Path, default=None, help="JSON result file (default benchmarks/results/NAME.json)")
    return found


@dataclass
class Row:
    """One line of the README's results table: a metric, ours, the naive pipeline's, and the ratio."""

    metric: str
    ours: str
    naive: str = "—"
    ratio: str = "—"


@dataclass
class Recorder:
    """Collects a benchmark's result and writes it as JSON and as rows of benchmarks/README.md."""

    name: str
    args: argparse.Namespace
    started: datetime
    load_before: list[float]

    @classmethod
    def start(cls, name: str, args: argparse.Namespace) -> Recorder:
        """Note the date and load average before the benchmark runs."""
        return cls(name, args, datetime.now(UTC), load_average())

    def finish(self, results: dict[str, Any], rows: Sequence[Row], runs: str) -> Path:
        """Write the JSON result and append the rows to the README table; returns the JSON path."""
        info = {**machine(), "load_average_before": self.load_before, "load_average_after": load_average()}
        args = {k: str(v) if isinstance(v, Path) else v for k, v in vars(self.args).items()}
        document = {
            "benchmark": self.name,
            "date": self.started.isoformat(timespec="seconds"),
            "machine": info,
            "args": args,
            "results": results,
        }
        out = self.args.out or RESULTS_DIR / f"{self.name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        load = f"{self.load_before[0]:.1f}→{info['load_average_after'][0]:.1f}"
        host = f"{info['nproc']} cores, {platform.system()} {platform.machine()}"
        date = self.started.strftime("%Y-%m-%d %H:%M")
        lines = [
            f"| {date} | {self.name} | {r.metric} | {r.ours} | {r.naive} | {r.ratio} | {runs} | {load} | {host} |"
            for r in rows
        ]
        with open(README, "a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        print("\n".join(lines))
        print(f"-> {out}")
        return out


def ms(value: float | None) -> str:
    """A latency for the table."""
    return "—" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def number(value: float | None, spec: str = ".1f") -> str:
    """A plain number for the table."""
    return "—" if value is None else format(value, spec)


def pair(found: dict[str, Any]) -> str:
    """'p50 / p95' of a stats() dict, in ms."""
    return f"{ms(found['p50'])} / {ms(found['p95'])}"


def times(value: float | None) -> str:
    """A ratio for the table."""
    return "—" if value is None else f"{value:,.0f}×" if value >= 100 else f"{value:g}×"


def iterate(cases: Sequence[EvalCase], runs: int) -> Iterator[tuple[int, EvalCase]]:
    """(run, case) for every run over the cases."""
    for run in range(runs):
        for case in cases:
            yield run, case
