"""The chat's « Pour aller plus loin » buttons and the « Exporter » downloads, through streamlit.testing."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from pypdf import PdfReader
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from ptce_assistant.levers import find_levers
from test_app import app_assistant, ask, start

Downloads = Callable[[AppTest, str], bytes]


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> Downloads:
    """The bytes behind a download button (AppTest keeps them in a media store of each run)."""
    import streamlit.testing.v1.app_test as app_test

    stores: list[MemoryMediaFileStorage] = []

    class Recorded(MemoryMediaFileStorage):
        def __init__(self, media_endpoint: str) -> None:
            super().__init__(media_endpoint)
            stores.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", Recorded)

    def data(at: AppTest, label: str) -> bytes:
        (button,) = [b for b in at.get("download_button") if b.proto.label == label]
        name = button.proto.url.rsplit("/", 1)[-1]
        return stores[-1].get_file(name).content

    return data


def pdf_text(data: bytes) -> str:
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages).split())


def test_export_buttons_give_files_and_a_follow_up_is_one_click(app_env: Path, downloads: Downloads) -> None:
    at = ask(start(), "Que dit le levier 4 sur 8 ?")
    (entry,) = at.session_state["entries"]
    quote = entry.answer.citations[0].quote
    labels = [b.proto.label for b in at.get("download_button")]
    assert sorted(labels) == ["Exporter la conversation", "Exporter la réponse"]

    markdown = downloads(at, "Exporter la réponse").decode("utf-8")  # Markdown by default
    assert f"« {quote} »" in markdown and "[1] Les PTCE et le rôle des collectivités" in markdown
    at.selectbox(key="export-format-t1").set_value("pdf").run()
    assert not at.exception
    assert " ".join(f"« {quote} »".split()) in pdf_text(downloads(at, "Exporter la réponse"))

    suggestions = app_assistant().follow_ups(entry.answer, [entry.question])
    shown = [b.label for b in at.button if b.key and b.key.startswith("followup-t1-")]
    assert shown == [s.question for s in suggestions] and 2 <= len(shown) <= 3
    levers = find_levers(app_assistant().index.chunks)
    at.button(key="followup-t1-0").click().run()
    assert not at.exception
    first, second = at.session_state["entries"]
    assert second.question == suggestions[0].question
    assert second.answer.citations[0].chunk_id in levers[4].chunk_ids  # lever 5, next to the cited one

    at.selectbox(key="export-format-conversation").set_value("docx").run()
    from docx import Document

    text = "\n".join(p.text for p in Document(io.BytesIO(downloads(at, "Exporter la conversation"))).paragraphs)
    assert f"Question 1 : {first.question}" in text and f"Question 2 : {second.question}" in text
    for answer in (first.answer, second.answer):
        assert all(f"« {c.quote} »" in text for c in answer.citations)


def test_levers_sheet_export(app_env: Path, downloads: Downloads) -> None:
    at = start("views/1_Leviers.py")
    assert not at.get("download_button")  # nothing ranked yet
    at.radio[0].set_value("rural")
    at.radio[1].set_value("emergence")
    at.form_submit_button[0].click().run()
    assert not at.exception
    sheet = downloads(at, "Exporter la fiche").decode("utf-8")
    assert sheet.startswith("# Fiche leviers : territoire rural, émergence du projet")
    levers = find_levers(app_assistant().index.chunks)
    assert all(f"« {lever.text} »" in sheet for lever in levers)

    at.selectbox(key="export-format-fiche-rural-emergence").set_value("pdf").run()  # the ranking stays shown
    assert not at.exception
    data = downloads(at, "Exporter la fiche")
    assert len(PdfReader(io.BytesIO(data)).pages) == 1
    assert "Fiche leviers : territoire rural, émergence du projet" in pdf_text(data)
