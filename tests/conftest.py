"""Shared fixtures: settings isolated in tmp folders, one Assistant over the bundled corpus."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ptce_assistant.assistant import Assistant
from ptce_assistant.chunking import Chunk
from ptce_assistant.config import PROJECT_ROOT, Settings

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


def paragraph_chunk(doc: str, n: int, first_words: str, title: str, heading: str) -> Chunk:
    """The paragraph of `doc` that starts with `first_words`, as chunk `n` of document "doc" (exact offsets)."""
    start = doc.index(first_words)
    end = doc.find("\n\n", start)
    end = len(doc) if end == -1 else end
    return Chunk(
        chunk_id=f"doc#{n}",
        doc_id="doc",
        title=title,
        text=doc[start:end],
        breadcrumb=[title, heading],
        start=start,
        end=end,
    )


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
