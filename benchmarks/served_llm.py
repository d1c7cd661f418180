"""The written mode through llama.cpp's OpenAI-compatible server vs the same model in-process.

One run, side by side: first token and complete answer (server vs in-process, alternating on the same
questions), then answers per minute through the one server with 1, 2 and 4 concurrent users (threads
sharing one Assistant, as the sessions of one app process do). The server is `ptce serve-llm`'s
command on a free port with an API key; both sides are loaded and primed before timing.

    .venv/bin/python benchmarks/served_llm.py [--runs 1] [--questions 3] [--per-user 2]
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import threading
import time
import urllib.request
from typing import Any

from harness import (
    WORK_DIR,
    Recorder,
    Row,
    bench_settings,
    dev_cases,
    number,
    pair,
    parser,
    prepared_assistant,
    ratio,
    stats,
    times,
)

from ptce_assistant.assistant import Assistant
from ptce_assistant.llm_server import SERVED_MODEL, server_command, server_environment


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready(url: str, key: str) -> bool:
    try:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def timed_answer(assistant: Assistant, question: str, llm: str) -> dict[str, Any]:
    """First token and total (s) of one written answer, and whether it came without an error notice."""
    started = time.perf_counter()
    first = None
    final = None
    for event in assistant.stream(question, mode="generative", llm=llm):  # type: ignore[arg-type]
        if event.kind == "token" and first is None:
            first = time.perf_counter() - started
        elif event.kind == "final":
            final = event.answer
    assert final is not None
    return {"first_token": first, "total": time.perf_counter() - started, "notice": final.notice}


def concurrent(assistant: Assistant, questions: list[str], users: int, per_user: int) -> dict[str, Any]:
    """`users` threads, each asking `per_user` questions in turn through the server; answers per minute."""
    answers: list[dict[str, Any]] = []
    lock = threading.Lock()

    def user(offset: int) -> None:
        for i in range(per_user):
            result = timed_answer(assistant, questions[(offset + i) % len(questions)], "openai")
            with lock:
                answers.append(result)

    started = time.perf_counter()
    threads = [threading.Thread(target=user, args=(u,)) for u in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {
        "users": users,
        "answers": len(answers),
        "errors": sum(a["notice"] is not None for a in answers),
        "wall_s": round(wall, 2),
        "answers_per_minute": round(len(answers) / wall * 60, 2),
        "total_ms": stats([a["total"] * 1000 for a in answers]),
        "first_token_ms": stats([a["first_token"] * 1000 for a in answers if a["first_token"] is not None]),
    }


def main() -> None:
    cli = parser("The written mode through llama.cpp's server vs in-process; answers/min for 1, 2, 4 users.", 1)
    cli.add_argument("--questions", type=int, default=3)
    cli.add_argument("--per-user", type=int, default=2)
    args = cli.parse_args()
    recorder = Recorder.start("served_llm", args)
    local = prepared_assistant()
    questions = [c.question for c in dev_cases() if c.answerable and not c.history][: max(args.questions, 4)]
    key = secrets.token_urlsafe(16)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    served = Assistant(
        bench_settings(
            WORK_DIR / "bundled",
            openai_base_url=base_url,
            openai_model=SERVED_MODEL,
            openai_api_key=key,
        )
    )
    log = (WORK_DIR / "served_llm-server.log").open("wb")
    server = subprocess.Popen(
        server_command(served.settings, "127.0.0.1", port),
        env=server_environment(served.settings),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not ready(f"{base_url}/models", key):
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"llama.cpp's server did not start (see {log.name})")
            time.sleep(0.5)
        local.prepare_generation("local")  # load and prime the in-process model outside the timings
        timed_answer(served, questions[0], "openai")  # the server evaluates the prompt's constant prefix once
        timed_answer(local, questions[0], "local")
        side: dict[str, list[dict[str, Any]]] = {"server": [], "in_process": []}
        for _ in range(args.runs):
            for question in questions[: args.questions]:
                side["server"].append(timed_answer(served, question, "openai"))
                side["in_process"].append(timed_answer(local, question, "local"))
        users = [concurrent(served, questions, n, args.per_user) for n in (1, 2, 4)]
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()

    def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "first_token_ms": stats([r["first_token"] * 1000 for r in runs if r["first_token"] is not None]),
            "total_ms": stats([r["total"] * 1000 for r in runs]),
            "errors": sum(r["notice"] is not None for r in runs),
        }

    a, b = summary(side["server"]), summary(side["in_process"])
    results = {"server": a, "in_process": b, "concurrent_users": users, "questions": questions[: args.questions]}
    per_minute = " / ".join(number(u["answers_per_minute"]) for u in users)
    recorder.finish(
        results,
        [
            Row(
                "written answer first token p50 / p95 (ms): server | in-process",
                pair(a["first_token_ms"]),
                pair(b["first_token_ms"]),
                times(ratio(a["first_token_ms"]["p50"], b["first_token_ms"]["p50"])),
            ),
            Row(
                "written answer total p50 / p95 (ms): server | in-process",
                pair(a["total_ms"]),
                pair(b["total_ms"]),
                times(ratio(a["total_ms"]["p50"], b["total_ms"]["p50"])),
            ),
            Row(
                f"answers/min through one server, 1 / 2 / 4 users ({args.per_user} each; errors "
                f"{sum(u['errors'] for u in users)})",
                per_minute,
            ),
            Row(
                "answer total p50 (ms) through one server, 1 / 2 / 4 users",
                " / ".join(number(u["total_ms"]["p50"], ",.0f") for u in users),
            ),
        ],
        runs=f"{args.runs}×{args.questions} + {args.per_user}/user",
    )


if __name__ == "__main__":
    main()
