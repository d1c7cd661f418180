"""Servers the tests start on 127.0.0.1 and stop themselves: free ports, readiness, clean shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def answers(url: str, headers: dict[str, str] | None = None) -> bool:
    """The URL answers 200 (the server is up)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def serving(
    command: Sequence[str],
    env: dict[str, str],
    log: Path,
    ready_url: str,
    what: str,
    timeout_s: float = 120,
    ready_headers: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` in its own process group until `ready_url` answers; stop the whole group on exit.

    It runs in the log's folder: no `.env` or `.streamlit/` of the developer's checkout applies.
    """
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=env, cwd=log.parent, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_until(lambda: answers(ready_url, ready_headers) or process.poll() is not None, timeout_s, what)
            if process.poll() is not None:
                pytest.fail(f"{what} exited with {process.returncode}:\n{log.read_text(errors='replace')}")
            yield process
        finally:
            stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group of `process` (SIGKILL after 30 s) and reap it."""
    with suppress(ProcessLookupError):  # the whole group has already exited
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
