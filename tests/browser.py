"""The app in a headless Chromium: `ptce app` on localhost, a Chromium context, the chat's page steps.

Shared by the browser tests and benchmarks/cold_start.py.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ptce_assistant.config import PROJECT_ROOT
from servers import free_port, serving

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium floods the closed network with refused connections.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
LOAD_TIMEOUT_MS = 300_000  # first load: embedding model and index build in the server process
STEP_TIMEOUT_MS = 60_000
# Questions the study answers with sources, each asked in a new conversation once the app has loaded.
QUESTIONS = (
    "Quels sont les huit leviers identifiés par l'étude ?",
    "Qui a publié l'étude et quand ?",
    "Quelles sont les spécificités des PTCE en milieu rural ?",
    "Pourquoi le rôle des collectivités est-il délicat ?",
    "Quels équipements les PTCE mutualisent-ils ?",
)


@dataclass
class Server:
    url: str
    root: Path
    process: subprocess.Popen[bytes]

    @property
    def audit_db(self) -> Path:
        return self.root / "audit.sqlite3"


@contextmanager
def running_app(
    root: Path, env: dict[str, str] | None = None, args: Sequence[str] = (), port: int | None = None
) -> Iterator[Server]:
    """`ptce app` on localhost (`port`, or a free one), with its own corpus copy, index and audit log under `root`."""
    corpus = root / "corpus"
    corpus.mkdir()
    for source in (PROJECT_ROOT / "corpus").iterdir():
        (corpus / source.name).write_bytes(source.read_bytes())
    settings = {
        "PTCE_CORPUS_DIR": str(corpus),
        "PTCE_INDEX_DIR": str(root / "index"),
        "PTCE_AUDIT_DB": str(root / "audit.sqlite3"),
        "PTCE_MODE": "extractive",
    }
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "ptce_assistant.cli", "app", "--port", str(port), *args]
    environment = {**os.environ, **settings, **(env or {})}
    with serving(command, environment, root / "server.log", f"{url}/_stcore/health", "the Streamlit server") as process:
        yield Server(url, root, process)


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """A headless Debian Chromium context with a fresh profile."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run scripts/setup.sh --dev (installs Debian's chromium)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
            locale="fr-FR",
        )
        try:
            yield context
        finally:
            context.close()


# Run in the page before a question is sent: notes when Enter is pressed and when the first source card is in
# the DOM (window.__ptceSent, window.__ptceShown), measured in the page since Playwright's polling adds its own steps.
WATCH_FIRST_CARD = """() => {
  window.__ptceSent = null; window.__ptceShown = null;
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && window.__ptceSent === null) window.__ptceSent = performance.now();
  }, {capture: true});
  new MutationObserver((changes, observer) => {
    if (window.__ptceSent !== null && document.querySelector("#t1-source-1")) {
      window.__ptceShown = performance.now(); observer.disconnect();
    }
  }).observe(document.body, {childList: true, subtree: true});
}"""


def chat_box(tab: Any) -> Any:
    """The chat's question box."""
    return tab.get_by_placeholder("Posez une question sur l'étude…")


def submit(tab: Any, question: str) -> None:
    """Type and send a question."""
    box = chat_box(tab)
    box.wait_for(timeout=STEP_TIMEOUT_MS)
    box.fill(question)
    box.press("Enter")


def settle(tab: Any) -> None:
    """Wait until the script run is over (the « Running » status widget is gone)."""
    tab.locator("[data-testid='stStatusWidget']").wait_for(state="hidden", timeout=STEP_TIMEOUT_MS)


def new_conversation(tab: Any) -> None:
    """Start afresh: each question then stands alone and its first source card is #t1-source-1."""
    tab.get_by_role("button", name="Nouvelle conversation").click()
    tab.locator(".ptce-card").first.wait_for(state="detached", timeout=STEP_TIMEOUT_MS)
    settle(tab)


def feedback_rows(db: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT turn_id, rating FROM feedback ORDER BY id").fetchall()
