"""The Streamlit app through streamlit.testing: chat, sources, abstention, feedback, uploads, levers."""

from __future__ import annotations

import html
import re
import sqlite3
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

import ptce_assistant.assistant as assistant_module
from conftest import reset_app
from ptce_assistant.answering.answer import Answer, Citation
from ptce_assistant.assistant import ABSTENTION, Assistant
from ptce_assistant.config import PROJECT_ROOT
from ptce_assistant.levers import find_levers, lever_question
from ptce_assistant.llm import LlmStatus

APP_DIR = PROJECT_ROOT / "app"
APP = APP_DIR / "streamlit_app.py"
import signin  # noqa: E402, F401  (re-exported to the access tests)
import ui  # noqa: E402  (the app's shared module lives next to the pages)

LEVERS_QUESTION = "Quels sont les huit leviers identifiés par l'étude ?"
TIMEOUT = 300  # the first run loads the embedding model and builds the index


def app_assistant() -> Assistant:
    """The assistant the app loaded (its index is the isolated one)."""
    assert assistant_module._shared is not None
    return assistant_module._shared


def start(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    if page:
        at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
    return at


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def markdown(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def button(at: AppTest, label: str) -> object:
    return next(b for b in at.button if b.label == label)


# Escaping ----------------------------------------------------------------------------------------
def test_escape_text_leaves_no_html_or_markdown_syntax() -> None:
    raw = '<script>alert("x")</script> **gras** [lien](javascript:x) $x^2$ :red[rouge] `code` # titre\n\nfin & co'
    escaped = ui.escape_text(raw)
    bare = re.sub(r"&#?\w+;", "", escaped.replace("<br>", ""))  # the text outside character references
    for syntax in "<>*[]()$:`#\"'\n":
        assert syntax not in bare
    assert html.unescape(escaped.replace("<br>", "\n")) == raw


def test_answer_markers_link_to_their_source_cards_only() -> None:
    citation = Citation(
        n=1, chunk_id="d#0001", doc_id="d", title="T", breadcrumb=["T"], page=None, quote="q", start=0, end=1
    )
    answer = Answer(
        question="?",
        standalone_query="?",
        answer="- « <b>x</b> » [1] [9]\n\nsuite",
        abstained=False,
        confidence=1.0,
        citations=[citation],
    )
    fragment = ui.answer_html(answer, "t3")
    assert '<a class="ptce-ref" href="#t3-source-1">[1]</a>' in fragment
    assert "&#91;9&#93;" in fragment and "#t3-source-9" not in fragment
    assert "<b>" not in fragment and "&lt;b&gt;x&lt;/b&gt;" in fragment
    assert "\n" not in fragment and fragment.startswith('<div class="ptce-answer">• ')
    headed = answer.model_copy(update={"answer": "Selon « T », partie « S » :\n\n- « q » [1]"})
    assert ui.answer_html(headed, "t3").startswith(
        '<div class="ptce-answer"><strong>Selon « T », partie « S » &#58;</strong><br><br>• '
    )  # the lead reads as the heading of its quotes


# Chat ---------------------------------------------------------------------------------------------
def test_a_question_gets_an_answer_and_source_cards_with_the_quote_highlighted(app_env: Path) -> None:
    at = ask(start(), LEVERS_QUESTION)
    (entry,) = at.session_state["entries"]
    answer = entry.answer
    assert not answer.abstained and len(answer.citations) == 8
    values = markdown(at)
    answer_md = next(v for v in values if 'class="ptce-answer"' in v)
    assert f'href="#{entry.anchor}-source-1"' in answer_md
    assert ui.escape_text("Faire oeuvre de pédagogie sur l'ESS") in answer_md
    cards = [v for v in values if f'id="{entry.anchor}-source-' in v]
    assert len(cards) == len(answer.citations)
    seventh = next(v for v in cards if f'id="{entry.anchor}-source-7"' in v)
    assert f"<mark>{ui.escape_text(answer.citations[6].quote)}</mark>" in seventh
    assert "levier 7 sur 8" in seventh
    assert ui.escape_text("Les PTCE et le rôle des collectivités") in seventh


def test_an_out_of_corpus_question_abstains_and_shows_the_nearest_passages(app_env: Path) -> None:
    at = ask(start(), "Quelle est la capitale du Japon ?")
    (entry,) = at.session_state["entries"]
    assert entry.answer.abstained
    values = markdown(at)
    assert ui.text_html(ABSTENTION["fr"]) in values
    assert any("Passages les plus proches" in v for v in values)
    nearest = [v for v in values if 'class="ptce-card"' in v]
    assert len(nearest) == len(entry.answer.consulted) > 0
    assert not any("<mark>" in v for v in nearest)  # nothing is presented as the answer


def test_feedback_and_comment_are_recorded_in_sqlite(app_env: Path) -> None:
    at = ask(start(), "Quel est le rôle des collectivités dans l'émergence des PTCE ?")
    (entry,) = at.session_state["entries"]
    db = app_env / "audit.sqlite3"
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT session_id, question, mode, corpus_hash, citations FROM turns WHERE id = ?", (entry.turn_id,)
        ).fetchone()
    assert row[0] == at.session_state["session_id"]
    assert row[1] == entry.question and row[2] == "extractive"
    assert row[3] == app_assistant().index.manifest.corpus_hash
    assert entry.answer.citations[0].quote in row[4]

    at.feedback[0].set_value(0).run()  # thumbs down
    at.text_input(key=f"comment-text-{entry.turn_id}").input("Il manque le rôle d'accompagnement.")
    at.form_submit_button[0].click().run()
    assert not at.exception
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT turn_id, rating, comment FROM feedback ORDER BY id").fetchall()
    assert rows == [(entry.turn_id, "down", None), (entry.turn_id, "down", "Il manque le rôle d'accompagnement.")]

    at.feedback[0].set_value(1).run()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT rating FROM feedback ORDER BY id DESC").fetchone() == ("up",)


def test_a_follow_up_uses_the_conversation_and_new_conversation_clears_it(app_env: Path) -> None:
    at = ask(start(), LEVERS_QUESTION)
    at = ask(at, "Et le septième ?")
    first, second = at.session_state["entries"]
    assert second.answer.citations[0].quote.startswith("Soutenir l'emploi")
    assert first.anchor != second.anchor
    button(at, "Nouvelle conversation").click().run()
    assert at.session_state["entries"] == []


def test_generative_mode_shows_the_verified_written_answer(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ptce_assistant.llm as llm

    monkeypatch.setattr(llm, "llm_status", lambda settings, backend: LlmStatus(available=True, model="fake-llm"))

    def fake_generative(self, draft, backend, started):  # type: ignore[no-untyped-def]
        yield assistant_module.StreamEvent(kind="token", text="Réponse ")
        yield assistant_module.StreamEvent(kind="token", text="rédigée.")
        yield assistant_module.StreamEvent(
            kind="final", answer=draft.model_copy(update={"mode": "generative", "model": "fake-llm"})
        )

    monkeypatch.setattr(Assistant, "_generative", fake_generative)
    prepared: list[str] = []
    monkeypatch.setattr(Assistant, "prepare_generation", lambda self, backend=None: prepared.append(backend) or True)
    ui._start_preparing.clear()
    at = start()
    assert prepared == []  # the extractive default loads no LLM
    at.radio(key="mode").set_value("local").run()
    at = ask(at, "Quel est le rôle des collectivités dans l'émergence des PTCE ?")
    ui._start_preparing(None, "local").join()  # the cached thread the page started
    ui._start_preparing.clear()
    assert prepared == ["local"]  # choosing the mode loaded the model in the background, once
    (entry,) = at.session_state["entries"]
    assert entry.answer.mode == "generative" and entry.answer.model == "fake-llm"
    assert any("fake-llm" in c.value for c in at.caption)
    assert not any("rédige" in c.value for c in at.caption)  # the waiting line was replaced by the final answer
    assert "Réponse rédigée" not in str(at.markdown)  # unverified tokens are never shown


def test_an_unavailable_model_is_explained_and_the_answer_stays_extractive(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ptce_assistant.llm as llm

    monkeypatch.setattr(
        llm,
        "llm_status",
        lambda settings, backend: LlmStatus(available=False, model="m", reason="à installer : make llm"),
    )
    at = start()
    assert any(
        caption.startswith("Indisponible — à installer : make llm") for caption in at.radio(key="mode").proto.captions
    )
    at.radio(key="mode").set_value("local").run()
    assert any("make llm" in w.value for w in at.warning)
    at = ask(at, LEVERS_QUESTION)
    assert at.session_state["entries"][0].answer.mode == "extractive"


def test_a_question_over_the_limit_is_one_line_without_traceback(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTCE_MAX_QUESTION_CHARS", "20")
    reset_app()
    at = start()
    assert at.chat_input[0].max_chars == 20
    at.session_state["pending_question"] = "Une question beaucoup trop longue pour la limite ?"  # e.g. from a page
    at.run()
    assert not at.exception
    (error,) = at.error
    assert "trop longue" in error.value and "\n" not in error.value and "Traceback" not in error.value
    assert at.session_state["entries"] == []


# Documents ----------------------------------------------------------------------------------------
GOOD = "Note pour les élus\n\nLe conseil municipal de Valcourt soutient la coopération économique locale.\n"


def test_uploads_good_and_bad_files_then_removes_the_good_one(app_env: Path) -> None:
    at = start("views/2_Documents.py")
    at.file_uploader[0].set_value(
        [
            ("../note élus.txt", GOOD.encode(), "text/plain"),
            ("photo.txt", bytes(range(256)) * 8, "text/plain"),
            ("controle.txt", b"\x01\x02\x03\x04\x05\x06\x07 " * 200, "text/plain"),
        ]
    ).run()
    button(at, "Indexer les fichiers").click().run()
    assert not at.exception

    successes = [s.value for s in at.success]
    errors = [e.value for e in at.error]
    assert len(successes) == 1 and successes[0].startswith("note élus.txt : ajouté (")
    assert len(errors) == 2 and all("\n" not in e and "refusé" in e for e in errors)
    assert any(e.startswith("photo.txt") and "binaire" in e for e in errors)
    assert any(e.startswith("controle.txt") for e in errors)
    uploads = app_env / "corpus" / "uploads"
    assert sorted(p.name for p in uploads.iterdir()) == ["note élus.txt"]  # refused files are not kept
    documents = app_assistant().index.manifest.documents
    assert "uploads/note élus.txt" in documents

    at.run()
    assert "uploads/note élus.txt" in set(at.dataframe[0].value["Fichier"])
    at.button(key="remove-uploads/note élus.txt").click().run()
    assert not at.exception
    assert any("retiré" in s.value for s in at.success)
    assert not (uploads / "note élus.txt").exists()
    assert "uploads/note élus.txt" not in app_assistant().index.manifest.documents
    assert list(at.dataframe[0].value["Fichier"]) == ["rtes-2014-ptce-role-des-collectivites.txt"]


HOSTILE = (
    "# Le jardin partagé de Valmorel\n\n"
    'Le jardin partagé de Valmorel accueille <script>alert("pirate")</script> des ateliers **coopératifs** '
    "et [un lien](javascript:alert(1)) pour les habitants du quartier.\n"
)


def test_html_and_markdown_in_documents_and_questions_show_as_text(app_env: Path) -> None:
    at = start("views/2_Documents.py")
    at.file_uploader[0].set_value(("jardin.md", HOSTILE.encode(), "text/markdown")).run()
    button(at, "Indexer les fichiers").click().run()
    assert any("jardin.md : ajouté" in s.value for s in at.success)

    at = start()  # the chat (a page of the navigation, not a file AppTest can switch to)
    at = ask(at, "Que propose le jardin partagé de Valmorel ? <img src=x onerror=alert(1)> **gras**")
    values = markdown(at)
    shown = "".join(values)
    assert "&lt;script&gt;alert(&quot;pirate&quot;)&lt;/script&gt;" in shown.replace("&#40;", "(").replace("&#41;", ")")
    assert "&#42;&#42;coopératifs&#42;&#42;" in shown
    assert "&lt;img src=x onerror=alert&#40;1&#41;&gt;" in shown.replace("&#61;", "=")
    for value in values:
        assert "<script" not in value and "<img" not in value and "javascript:" not in value
        assert "**" not in value or value.startswith("**")  # only the app's own bold labels


# Levers -------------------------------------------------------------------------------------------
def test_levers_page_cites_each_lever_ranks_them_and_opens_the_chat(app_env: Path) -> None:
    at = start("views/1_Leviers.py")
    values = markdown(at)
    levers = find_levers(app_assistant().index.chunks)
    assert len(levers) == 8
    for lever in levers:
        card = next(v for v in values if f'id="levier-{lever.position}"' in v)
        assert f"levier {lever.position} sur 8" in card and ui.escape_text(lever.text) in card
    assert any(e.label.startswith("Passages liés") for e in at.expander)

    at.radio[0].set_value("urbain")
    at.radio[1].set_value("developpement")
    at.form_submit_button[0].click().run()
    values = markdown(at)
    start_ranking = next(i for i, v in enumerate(values) if "Leviers classés" in v)
    first_ranked = values[start_ranking + 1]
    assert "levier 6 sur 8" in first_ranked and first_ranked.count('class="ptce-card"') == 1

    at.button(key="ask-lever-7").click().run()
    assert not at.exception
    (entry,) = at.session_state["entries"]
    assert entry.question == lever_question(levers[6])
    assert entry.answer.citations[0].chunk_id == levers[6].first.chunk_id


# CLI ----------------------------------------------------------------------------------------------
def test_ptce_app_runs_streamlit_headless_on_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from ptce_assistant.cli import app

    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(os, "execv", lambda path, argv: calls.append((path, argv)))
    result = CliRunner().invoke(app, ["app", "--port", "8765"])
    assert result.exit_code == 0, result.output
    ((path, command),) = calls
    assert path == sys.executable
    assert command[:5] == [sys.executable, "-m", "streamlit", "run", str(APP)]
    options = dict(zip(command[5::2], command[6::2], strict=True))
    assert options["--server.address"] == "127.0.0.1" and options["--server.port"] == "8765"
    assert options["--server.headless"] == "true"


def test_the_written_mode_shows_what_was_measured_of_it(app_env: Path) -> None:
    from ptce_assistant.evals.records import load_report, written_mode_record

    record = written_mode_record(load_report(PROJECT_ROOT / "evals/reports/generative-local/report.json"))
    assert record is not None and 0 <= record.fallback_rate <= 1
    captions = start().radio(key="mode").proto.captions
    expected = f"introduction écartée dans {record.fallback_rate * 100:.0f} % des réponses"
    assert expected in captions[1] and f"mesuré sur {record.split}" in captions[1]
