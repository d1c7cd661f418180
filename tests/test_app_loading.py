"""The app's background loading (app/loading.py) and its French navigation (ui.open_app), through AppTest."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import loading
from ptce_assistant.errors import PtceError
from test_app import APP, ask, markdown, start, ui


def test_the_steps_run_in_order_in_the_background_and_say_which_one_runs() -> None:
    gates = [threading.Event(), threading.Event()]
    ran: list[str] = []

    def step(n: int) -> loading.Step:
        def run(state: loading.Loading) -> None:
            gates[n].wait(10)
            ran.append(f"step {n}")

        return (f"Étape {n}…", run)

    state = loading.Loading([step(0), step(1)]).start()
    assert not state.wait(0.2) and state.stage == "Étape 0…"  # started, and the caller is free meanwhile
    gates[0].set()
    while state.stage != "Étape 1…":
        state.wait(0.01)
    assert not state.done and ran == ["step 0"]  # waiting now is for the second step only
    gates[1].set()
    assert state.wait(10) and ran == ["step 0", "step 1"] and state.error is None


def test_a_failed_step_ends_the_loading_with_its_message() -> None:
    def missing_model(state: loading.Loading) -> None:
        raise PtceError("modèle introuvable : lancez make run")

    def crash(state: loading.Loading) -> None:
        raise RuntimeError("boom")

    def never(state: loading.Loading) -> None:
        raise AssertionError("a step after a failure must not run")

    state = loading.Loading([("a", missing_model), ("b", never)]).start()
    assert state.wait(10) and str(state.error) == "modèle introuvable : lancez make run"
    state = loading.Loading([("a", crash)]).start()
    assert state.wait(10) and isinstance(state.error, PtceError) and "RuntimeError" in str(state.error)


def test_a_loading_error_is_one_line_and_the_next_run_tries_again(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(state: loading.Loading) -> None:
        raise PtceError("disque plein")

    real = loading.assistant_loading
    calls: list[int] = []

    def first_fails() -> loading.Loading:
        calls.append(1)
        return loading.Loading([("Chargement…", full_disk)]).start() if len(calls) == 1 else real()

    monkeypatch.setattr(loading, "assistant_loading", first_fails)
    at = AppTest.from_file(str(APP), default_timeout=300).run()
    assert not at.exception and [e.value for e in at.error] == ["disque plein"]
    assert at.title[0].value == ui.APP_TITLE and at.chat_input  # the page is there, only the answers wait
    at.run()
    assert not at.exception and not at.error and len(calls) == 2  # loaded on the next run


def test_the_navigation_lists_the_pages_once_in_french(app_env: Path) -> None:
    at = start()
    titles = ["Questions-réponses", "Leviers", "Documents", "Évaluation", "Journal d'audit"]
    assert [link.proto.label for link in at.get("page_link")] == titles  # type: ignore[attr-defined]
    registered = [info["page_name"] for info in at._registered_pages.values()]  # what st.navigation routes
    assert registered == titles
    assert not (Path(ui.APP_DIR) / "pages").exists()  # that folder would add Streamlit's own English list
    at = ask(at, "Quels sont les huit leviers identifiés par l'étude ?")
    assert any('class="ptce-answer"' in v for v in markdown(at))


def test_the_chat_page_shell_needs_no_heavy_module() -> None:
    """The page's own modules import neither the assistant, nor LangChain, nor Chroma: the title, the
    examples and the question box reach the browser before those load (app first paint, issue 18)."""
    import subprocess
    import sys

    heavy = ["ptce_assistant.assistant", "ptce_assistant.llm", "langchain_core", "chromadb", "bm25s", "onnxruntime"]
    probe = f"import sys, ui, loading, signin; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=APP.parent, capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
