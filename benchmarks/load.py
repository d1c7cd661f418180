"""Load test: N users (threads) ask questions at once through one shared Assistant, as the app's sessions do.

Each user owns distinct dev questions and asks them in a loop until `--seconds` have passed or it has
made `--max-requests`. Every answer is checked against the one the same question got when asked
alone: same question field, same answer text, same cited chunks; anything else is a *mixed* answer.
No network is involved (the facade is called in-process; with PTCE_CHROMA_HOST set, only that host).

    .venv/bin/python benchmarks/load.py --users 4 --seconds 60
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness import Recorder, Row, dev_cases, number, pair, parser, prepared_assistant, stats

from ptce_assistant.answering.answer import Answer
from ptce_assistant.assistant import Assistant


@dataclass(frozen=True)
class Reference:
    """What a question's answer must be, whoever else is asking at the same time."""

    answer: str
    chunk_ids: tuple[str, ...]

    @classmethod
    def of(cls, answer: Answer) -> Reference:
        """The comparable part of an answer."""
        return cls(answer.answer, tuple(c.chunk_id for c in answer.citations))


@dataclass
class LoadReport:
    """Outcome of a load run."""

    users: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    mixed: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        """Answers received (checked or not)."""
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        """Answers per second over the run."""
        return self.requests / self.seconds if self.seconds else 0.0


def questions_per_user(users: int, per_user: int | None = None) -> list[list[str]]:
    """Distinct standalone dev questions, dealt round-robin: no two users share one."""
    pool = list(dict.fromkeys(c.question for c in dev_cases() if not c.history))
    if users > len(pool):
        raise SystemExit(f"at most {len(pool)} users: there are {len(pool)} distinct standalone dev questions")
    dealt = [pool[u::users] for u in range(users)]
    return [q[:per_user] for q in dealt] if per_user else dealt


def run_load(assistant: Assistant, questions: Sequence[Sequence[str]], seconds: float, max_requests: int) -> LoadReport:
    """Each user (a thread) asks its questions in turn until the time or its request budget runs out."""
    expected = {q: Reference.of(assistant.ask(q)) for user in questions for q in user}  # one user at a time
    report = LoadReport(users=len(questions), seconds=0.0)
    lock = threading.Lock()
    start = threading.Barrier(len(questions) + 1)
    deadline = 0.0

    def user(number: int, own: Sequence[str]) -> None:
        start.wait()
        for i in range(max_requests):
            if time.perf_counter() >= deadline:
                return
            question = own[i % len(own)]
            began = time.perf_counter()
            try:
                answer = assistant.ask(question)
            except Exception as exc:  # any failure is what the load test reports
                with lock:
                    report.failures.append(f"user {number}: {question!r}: {type(exc).__name__}: {exc}")
                continue
            elapsed = (time.perf_counter() - began) * 1000
            wrong = answer.question != question.strip() or Reference.of(answer) != expected[question]
            with lock:
                report.latencies_ms.append(elapsed)
                if wrong:
                    report.mixed.append(
                        f"user {number}: {question!r}: not the answer it gets alone (answers {answer.question!r})"
                    )

    threads = [threading.Thread(target=user, args=(n, own), daemon=True) for n, own in enumerate(questions)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    report.seconds = time.perf_counter() - began
    return report


def main() -> None:
    """Run the load test once per `--runs` and record throughput, latency and errors."""
    cli = parser("Concurrent users on one Assistant: throughput, latency, failures, mixed answers.", 1)
    cli.add_argument("--users", type=int, default=4)
    cli.add_argument("--seconds", type=float, default=60.0)
    cli.add_argument("--max-requests", type=int, default=500, help="per user")
    args = cli.parse_args()
    if not 1 <= args.users <= 64 or not 0 < args.seconds <= 3600:
        raise SystemExit("--users must be 1-64 and --seconds 1-3600")
    recorder = Recorder.start("load", args)
    assistant = prepared_assistant()
    questions = questions_per_user(args.users)
    hits, misses = assistant.embedder.query_cache_hits, assistant.embedder.query_cache_misses
    reports = [run_load(assistant, questions, args.seconds, args.max_requests) for _ in range(args.runs)]
    hits = assistant.embedder.query_cache_hits - hits
    misses = assistant.embedder.query_cache_misses - misses
    latencies = [ms for r in reports for ms in r.latencies_ms]
    results: dict[str, Any] = {
        "users": args.users,
        "requests": sum(r.requests for r in reports),
        "throughput_per_s": [round(r.throughput, 2) for r in reports],
        "latency_ms": stats(latencies),
        "failures": [f for r in reports for f in r.failures],
        "mixed": [m for r in reports for m in r.mixed],
        # Every answer reads its question's vector twice (search, then sentence scoring): >= 50% by design.
        "query_cache": {"hits": hits, "misses": misses, "hit_rate": round(hits / max(hits + misses, 1), 3)},
    }
    print(f"{results['requests']} answers, {len(results['failures'])} failures, {len(results['mixed'])} mixed")
    recorder.finish(
        results,
        [
            Row(
                f"{args.users} users: answers/s, latency p50 / p95 (ms)",
                f"{number(min(results['throughput_per_s']))}/s, {pair(results['latency_ms'])}",
            ),
            Row(f"{args.users} users: failures, mixed answers", f"{len(results['failures'])}, {len(results['mixed'])}"),
            Row(
                f"{args.users} users: question-vector cache hit rate (hits / misses)",
                f"{results['query_cache']['hit_rate']:.0%} ({hits} / {misses})",
            ),
        ],
        runs=f"{args.runs}×{args.seconds:g} s, {results['requests']} answers",
    )
    if results["failures"] or results["mixed"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
