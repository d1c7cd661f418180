"""`make stack`'s Procfile run by honcho on free ports: Chroma server, llama.cpp server, the app; a question
asked in the browser in the written mode; then every process the stack started is gone."""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from browser import LOAD_TIMEOUT_MS, STEP_TIMEOUT_MS, chat_box, chromium, settle, submit
from ptce_assistant.config import PROJECT_ROOT
from ptce_assistant.llm_server import SERVED_MODEL
from servers import answers, free_port, stop_group, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.llm]

GENERATION_TIMEOUT_MS = 600_000  # a written lead on two shared cores, after the extractive draft


def stack_processes(marker: str) -> list[int]:
    """Processes whose environment carries `marker`: everything honcho started, and their children."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # exited meanwhile, or not ours to read
            continue
        if marker.encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def test_the_stack_answers_in_the_browser_then_stops_every_process(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for source in (PROJECT_ROOT / "corpus").iterdir():
        (corpus / source.name).write_bytes(source.read_bytes())
    ports = {"PTCE_CHROMA_PORT": free_port(), "PTCE_LLM_PORT": free_port(), "PTCE_APP_PORT": free_port()}
    marker = f"PTCE_STACK_TEST={secrets.token_hex(8)}"
    env = {
        **os.environ,
        **{name: str(port) for name, port in ports.items()},
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PTCE_CHROMA_PATH": str(tmp_path / "chroma"),
        "PTCE_CORPUS_DIR": str(corpus),
        "PTCE_INDEX_DIR": str(tmp_path / "index"),
        "PTCE_AUDIT_DB": str(tmp_path / "audit.sqlite3"),
        "PTCE_OPENAI_API_KEY": secrets.token_urlsafe(16),
        "PTCE_LLM_MAX_TOKENS": "40",
        marker.split("=")[0]: marker.split("=")[1],
    }
    app_url = f"http://127.0.0.1:{ports['PTCE_APP_PORT']}"
    log = tmp_path / "honcho.log"
    with log.open("wb") as output:
        honcho = subprocess.Popen(
            [sys.executable, "-m", "honcho", "start", "-f", str(PROJECT_ROOT / "Procfile"), "-d", str(tmp_path)],
            env=env,
            cwd=tmp_path,  # no developer .env applies
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: answers(f"{app_url}/_stcore/health") or honcho.poll() is not None, 180, "the stack")
        assert honcho.poll() is None, log.read_text(errors="replace")
        assert len(stack_processes(marker)) >= 3
        with chromium(tmp_path / "profile") as context:
            page = context.new_page()
            page.goto(app_url)
            chat_box(page).wait_for(timeout=LOAD_TIMEOUT_MS)
            settle(page)
            page.get_by_text(f"{SERVED_MODEL} — disponible").wait_for(timeout=STEP_TIMEOUT_MS)
            page.get_by_text("Modèle distant (OpenAI-compatible)").click()
            # Shown only once the written mode is chosen and its server available.
            page.get_by_text("Les citations vérifiées s'affichent d'abord").wait_for(timeout=STEP_TIMEOUT_MS)
            settle(page)
            submit(page, "Quel est le rôle des collectivités dans l'émergence des PTCE ?")
            page.locator("#t1-source-1").wait_for(timeout=LOAD_TIMEOUT_MS)
            wait_until(lambda: turns(tmp_path / "audit.sqlite3"), GENERATION_TIMEOUT_MS / 1000, "the logged turn")
            settle(page)
            assert page.locator("#t1-source-1 mark").inner_text().strip()
        ((mode, model, answer),) = turns(tmp_path / "audit.sqlite3")
        # Written through the stack's server (its lead kept or dropped by verification), never an error.
        assert (mode, model) == ("generative", SERVED_MODEL), answer
        served = log.read_text(errors="replace")
        assert "POST /v1/chat/completions" in served  # the app called the stack's LLM server
        assert env["PTCE_OPENAI_API_KEY"] not in served
    finally:
        stop_group(honcho)  # honcho stops its three services, then exits
        wait_until(lambda: not stack_processes(marker), 60, "every process of the stack to exit")
    assert not any(listening(port) for port in ports.values())


def turns(db: Path) -> list[tuple[str, str, str]]:
    """The audit log's turns (mode, model, answer), once the app has written one."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT mode, model, answer FROM turns").fetchall()
    except sqlite3.Error:  # created but not yet migrated
        return []


def listening(port: int) -> bool:
    """Something accepts connections on 127.0.0.1:`port`."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
