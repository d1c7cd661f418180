"""Shared fixtures: settings isolated in tmp folders, one Assistant over the bundled corpus."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ptce_assistant.assistant import Assistant
from ptce_assistant.config import PROJECT_ROOT, Settings
from servers import answers, free_port, stop_group, wait_until

CORPUS_DIR = PROJECT_ROOT / "corpus"
STUDY = CORPUS_DIR / "rtes-2014-ptce-role-des-collectivites.txt"

# Tests never read the developer's .env nor write the real index/ or audit log.
os.environ.setdefault("PTCE_AUDIT_DB", "/nonexistent/set-by-fixtures.sqlite3")


def make_settings(tmp: Path, **overrides: object) -> Settings:
    """Settings whose index and audit log live under `tmp` (models stay in the shared cache)."""
    values: dict[str, object] = {
        "corpus_dir": CORPUS_DIR,
        "index_dir": tmp / "index",
        "audit_db": tmp / "audit.sqlite3",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def study_text() -> str:
    """The bundled study, as the loader normalises it."""
    from ptce_assistant.documents import load_document

    return load_document(STUDY, CORPUS_DIR).text


@pytest.fixture(scope="session")
def shared_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of the session-wide index over the bundled corpus."""
    return make_settings(tmp_path_factory.mktemp("shared"))


@pytest.fixture(scope="session")
def assistant(shared_settings: Settings) -> Iterator[Assistant]:
    """One Assistant with the bundled corpus indexed (built once per test session)."""
    helper = Assistant(shared_settings)
    report = helper.ingest()
    assert not report.rejected, report.rejected
    yield helper


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """A writable corpus folder holding a copy of the study."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / STUDY.name).write_text(STUDY.read_text(encoding="utf-8"), encoding="utf-8")
    return folder


def reset_app() -> None:
    """Forget the app's cached settings, assistant and resources: its next run reads the environment again."""
    import streamlit as st

    import ptce_assistant.assistant as assistant_module
    from ptce_assistant.config import get_settings

    get_settings.cache_clear()
    assistant_module._shared = None
    st.cache_resource.clear()


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, study_text: str, on_this_machine: None) -> Iterator[Path]:
    """An isolated corpus, index and audit log, read by the app's own get_settings()."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for source in CORPUS_DIR.iterdir():
        (corpus / source.name).write_bytes(source.read_bytes())
    monkeypatch.setenv("PTCE_CORPUS_DIR", str(corpus))
    monkeypatch.setenv("PTCE_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("PTCE_AUDIT_DB", str(tmp_path / "audit.sqlite3"))
    monkeypatch.setenv("PTCE_MODE", "extractive")
    reset_app()
    yield tmp_path
    reset_app()


@pytest.fixture
def on_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's visitor is on 127.0.0.1, the local administrator (AppTest itself has no connection)."""
    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "app"))  # pages import the app's modules
    import signin

    monkeypatch.setattr(signin, "client_address", lambda: "127.0.0.1")


@dataclass
class LlmServer:
    """`python -m llama_cpp.server` over the bundled GGUF on 127.0.0.1, behind an API key.

    Tests may kill it (`kill`) and bring it back on the same port (`start`).
    """

    port: int
    api_key: str
    log: Path
    settings: Settings
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """What PTCE_OPENAI_BASE_URL is set to."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        """Start the server and wait until /v1/models answers with the key."""
        from ptce_assistant.llm_server import server_command, server_environment

        env = server_environment(self.settings)
        output = self.log.open("ab")
        self.process = subprocess.Popen(
            server_command(self.settings, "127.0.0.1", self.port),
            env=env,
            cwd=self.log.parent,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        output.close()
        headers = {"Authorization": f"Bearer {self.api_key}"}
        process = self.process
        wait_until(lambda: answers(f"{self.base_url}/models", headers) or process.poll() is not None, 180, "llama.cpp")
        if process.poll() is not None:
            pytest.fail(f"llama.cpp's server exited with {process.returncode}:\n{self.log.read_text(errors='replace')}")

    def kill(self) -> None:
        """SIGKILL the server, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """Stop the server cleanly."""
        if self.process is not None:
            stop_group(self.process)


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmServer]:
    """One OpenAI-compatible server for the session (the model loads once), stopped at the end."""
    import secrets

    folder = tmp_path_factory.mktemp("llm-server")
    key = "test-" + secrets.token_urlsafe(16)
    settings = make_settings(folder, openai_api_key=key)
    server = LlmServer(port=free_port(), api_key=key, log=folder / "llama-server.log", settings=settings)
    server.start()
    yield server
    server.stop()
