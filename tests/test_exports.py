"""Take the answer away: Markdown, Word and PDF exports read back, quotes verbatim, every [n] with its source."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from docx import Document
from pypdf import PdfReader
from typer.testing import CliRunner

from ptce_assistant.answering.answer import Answer
from ptce_assistant.assistant import Assistant
from ptce_assistant.cli import app
from ptce_assistant.config import get_settings
from ptce_assistant.exports import ExportFormat, file_name, stamp
from ptce_assistant.levers import recommend

WHEN = datetime(2026, 12, 4, 14, 20, tzinfo=UTC)
QUESTIONS = (
    "Quels sont les huit leviers identifiés par l'étude ?",
    "Quel est le rôle des collectivités dans l'émergence des PTCE ?",
    "Quelle est la capitale du Japon ?",
)
FORMATS: tuple[ExportFormat, ...] = ("md", "docx", "pdf")


def read_back(data: bytes, fmt: ExportFormat) -> str:
    """The text of an exported file, as a reader would extract it."""
    if fmt == "md":
        return data.decode("utf-8")
    if fmt == "docx":
        return "\n".join(p.text for p in Document(io.BytesIO(data)).paragraphs)
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def flat(text: str) -> str:
    """Whitespace collapsed (a PDF breaks lines where the page ends, not where the text does)."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def answers(assistant: Assistant) -> list[Answer]:
    return [assistant.ask(q) for q in QUESTIONS]


@pytest.mark.parametrize("fmt", FORMATS)
def test_conversation_export_keeps_every_quote_verbatim_with_its_source(
    assistant: Assistant, answers: list[Answer], fmt: ExportFormat
) -> None:
    text = read_back(assistant.export(answers, fmt, when=WHEN), fmt)
    exact = text if fmt != "pdf" else flat(text)  # md and docx keep the text as is; the PDF its words
    assert flat(f"empreinte du corpus {assistant.index.manifest.corpus_hash}") in flat(text)
    assert stamp(WHEN, "fr") == "4 décembre 2026 à 14:20 UTC" and stamp(WHEN, "fr") in text
    for number, answer in enumerate(answers, start=1):
        assert flat(f"Question {number} : {answer.question}") in flat(text)
        markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)}
        assert markers == {c.n for c in answer.citations}
        for citation in answer.citations:
            quote = f"« {citation.quote} »" if fmt != "pdf" else flat(f"« {citation.quote} »")
            assert quote in exact  # verbatim, accents and « » included
            chunk = assistant.index.by_id[citation.chunk_id]
            where = f"[{citation.n}] {citation.title} — {' › '.join(citation.breadcrumb[1:])}"
            assert flat(where) in flat(text)
            assert flat(f"caractères {citation.start}–{citation.end}") in flat(text)
            if chunk.list_position:
                assert flat(f"{where} · {chunk.item_label()}") in flat(text)
    abstained = answers[2]
    assert abstained.abstained and abstained.consulted
    assert "Passages les plus proches" in text
    for hit in abstained.consulted:  # an abstention still shows what it looked at, verbatim
        assert flat(f"« {hit.chunk.text} »") in flat(text)


@pytest.mark.parametrize("fmt", FORMATS)
def test_single_english_answer_gets_english_labels(assistant: Assistant, fmt: ExportFormat) -> None:
    answer = assistant.ask("What does lever 4 of 8 say?")
    text = flat(read_back(assistant.export([answer], fmt, when=WHEN), fmt))
    assert "Sourced answer" in text and "4 December 2026 at 14:20 UTC" in text
    assert "characters" in text and "item 4 of 8" in text
    assert flat(f"« {answer.citations[0].quote} »") in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_levers_sheet_lists_every_ranked_lever_verbatim_in_order(assistant: Assistant, fmt: ExportFormat) -> None:
    recommendation = recommend(assistant, "urbain", "developpement")
    data = assistant.export_levers(recommendation, "territoire urbain, développement du projet", fmt, when=WHEN)
    text = flat(read_back(data, fmt))
    assert "Fiche leviers : territoire urbain, développement du projet" in text
    assert assistant.index.manifest.corpus_hash in text
    places = []
    for ranked in recommendation.levers:
        lever = ranked.lever
        entry = flat(f"{ranked.rank}. 8 leviers au développement des PTCE ont été identifiés · {lever.label}")
        assert entry in text
        assert flat(f"« {lever.text} »") in text
        places.append(text.index(entry))
    assert places == sorted(places) and len(places) == 8
    if fmt == "pdf":
        assert len(PdfReader(io.BytesIO(data)).pages) == 1  # a one-page sheet


def test_nothing_to_export_is_a_user_error(assistant: Assistant) -> None:
    from ptce_assistant.errors import PtceError

    with pytest.raises(PtceError, match="rien à exporter"):
        assistant.export([], "md")
    assert file_name("ptce-reponse", "pdf", WHEN) == "ptce-reponse-2026-12-04-1420.pdf"


def test_cli_ask_exports_to_a_file(monkeypatch: pytest.MonkeyPatch, corpus_copy: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("PTCE_CORPUS_DIR", str(corpus_copy))
    monkeypatch.setenv("PTCE_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("PTCE_AUDIT_DB", str(tmp_path / "audit.sqlite3"))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        assert runner.invoke(app, ["ingest"]).exit_code == 0
        out = tmp_path / "reponse.docx"
        result = runner.invoke(app, ["ask", "Que dit le levier 7 sur 8 ?", "--out", str(out)])
        assert result.exit_code == 0, result.output
        text = read_back(out.read_bytes(), "docx")
        assert "Question : Que dit le levier 7 sur 8 ?" in text
        assert "« Soutenir l'emploi et les fonctions de coordination" in text and "levier 7 sur 8" in text

        result = runner.invoke(
            app, ["ask", "Que dit le levier 7 sur 8 ?", "--format", "pdf", "--out", str(tmp_path / "r.pdf")]
        )
        assert result.exit_code == 0, result.output
        assert "levier 7 sur 8" in flat(read_back((tmp_path / "r.pdf").read_bytes(), "pdf"))

        result = runner.invoke(app, ["ask", "Que dit le levier 7 sur 8 ?", "--format", "md"])
        assert result.exit_code == 0 and "# Réponse sourcée" in result.stdout and "[1] " in result.stdout

        for bad in (["--format", "pdf"], ["--format", "odt", "--out", "x.odt"], ["--out", "x.txt"]):
            result = runner.invoke(app, ["ask", "Que dit le levier 7 sur 8 ?", *bad])
            assert result.exit_code == 2, (bad, result.output)
    finally:
        get_settings.cache_clear()
