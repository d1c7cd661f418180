"""Access control in the app (Streamlit's AppTest): pages opened directly without the role, the admin
token, sign-in through OpenID Connect (st.user), expired sign-ins, the per-person limits."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ptce_assistant.audit import AuditLog
from test_app import APP, LEVERS_QUESTION, TIMEOUT, button, signin, start

REMOTE = "203.0.113.7"  # a visitor on the intranet
TOKEN = "jeton-administrateur-de-test-0123"
NOTE = "Note de Valcourt\n\nLe conseil municipal de Valcourt soutient la coopération économique locale.\n"
AUTH = {
    "auth": {
        "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
        "cookie_secret": "secret-de-test-pour-les-cookies",
        "client_id": "ptce",
        "client_secret": "secret-client-de-test",
        "server_metadata_url": "http://127.0.0.1:9400/.well-known/openid-configuration",
    }
}
ADMIN = {"is_logged_in": True, "sub": "alice-sub", "email": "alice@exemple.fr", "name": "Alice Admin"}
READER = {"is_logged_in": True, "sub": "bob-sub", "email": "bob@exemple.fr", "name": "Bob Lecteur"}
ADMIN_PAGES = ("views/3_Evaluation.py", "views/4_Journal.py")


@pytest.fixture
def remote(monkeypatch: pytest.MonkeyPatch, app_env: Path) -> Path:
    """Sign-in off, the visitor on another machine, one uploaded document already in the corpus."""
    monkeypatch.setattr(signin, "client_address", lambda: REMOTE)
    (app_env / "corpus" / "uploads").mkdir()
    (app_env / "corpus" / "uploads" / "note.txt").write_text(NOTE, encoding="utf-8")
    return app_env


def signed_in(user: dict[str, object], page: str | None = None) -> AppTest:
    """The app with sign-in on, as `user` (claims as the identity token gives them, signed now)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets = AUTH
    at.user = user | ({"iat": int(time.time())} if user.get("is_logged_in") else {})
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def page_links(at: AppTest) -> list[str]:
    return [link.value for link in at.get("page_link")]  # type: ignore[attr-defined]


def has_changes_controls(at: AppTest) -> bool:
    """The upload and removal controls of the Documents page."""
    return bool(at.get("file_uploader")) or any(b.label in ("Indexer les fichiers", "Retirer") for b in at.button)


def test_a_reader_opening_the_documents_page_directly_sees_the_list_and_no_control(remote: Path) -> None:
    at = start("views/2_Documents.py")
    assert not has_changes_controls(at)
    assert "uploads/note.txt" in set(at.dataframe[0].value["Fichier"])  # the list itself is not secret
    assert any("Consultation seule" in i.value and "127.0.0.1" in i.value for i in at.info)
    assert not at.get("text_input")  # no token form when no PTCE_ADMIN_TOKEN is set
    assert "Évaluation" not in page_links(at) and "Journal d'audit" not in page_links(at)
    assert any("Sans connexion · lecteur" in c.value for c in at.caption)


@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_a_reader_opening_an_administrators_page_directly_is_refused(remote: Path, page: str) -> None:
    at = start(page)
    assert [e.value for e in at.error] == ["Page réservée aux administrateurs."]
    assert not at.tabs and not at.selectbox and not at.get("download_button") and not at.dataframe


def test_a_click_sent_after_losing_the_role_changes_nothing(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = start("views/2_Documents.py")  # 127.0.0.1: administrator
    at.file_uploader[0].set_value(("valcourt.txt", NOTE.encode(), "text/plain")).run()
    indexer = button(at, "Indexer les fichiers")
    monkeypatch.setattr(signin, "client_address", lambda: REMOTE)
    indexer.click().run()  # the stale page still sends the click
    assert not at.exception and not at.success
    assert not (app_env / "corpus" / "uploads" / "valcourt.txt").exists()
    assert not has_changes_controls(at)


def test_the_admin_token_unlocks_the_changes_for_this_session_only(
    remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTCE_ADMIN_TOKEN", TOKEN)
    from ptce_assistant.config import get_settings

    get_settings.cache_clear()
    at = start("views/2_Documents.py")
    assert not has_changes_controls(at)
    at.text_input(key=signin.TOKEN_INPUT).input("mauvais-jeton-0000000000")
    at.form_submit_button[0].click().run()
    assert [e.value for e in at.error] == ["Jeton refusé."] and not has_changes_controls(at)
    at.text_input(key=signin.TOKEN_INPUT).input(TOKEN)
    at.form_submit_button[0].click().run()
    assert not at.exception and has_changes_controls(at)
    assert any("Sans connexion · administrateur" in c.value for c in at.caption)
    assert not has_changes_controls(start("views/2_Documents.py"))  # a new session asks again


# Sign-in through OpenID Connect -----------------------------------------------------------------------
def test_with_sign_in_on_nothing_shows_before_signing_in(app_env: Path) -> None:
    for page in (None, "views/2_Documents.py", "views/1_Leviers.py", *ADMIN_PAGES):
        at = signed_in({"is_logged_in": False}, page)
        assert [b.label for b in at.button] == ["Se connecter"], page
        assert not at.chat_input and not at.dataframe and not page_links(at) and not at.error


def test_a_signed_in_reader_asks_is_traced_and_cannot_change_the_corpus(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTCE_ADMINS", "alice@exemple.fr")
    at = signed_in(READER)
    assert any(c.value == "Connecté : Bob Lecteur · lecteur" for c in at.caption)
    assert "Se déconnecter" in [b.label for b in at.button]
    at.chat_input[0].set_value(LEVERS_QUESTION).run()
    (entry,) = at.session_state["entries"]
    with sqlite3.connect(app_env / "audit.sqlite3") as conn:
        assert conn.execute("SELECT actor FROM turns WHERE id = ?", (entry.turn_id,)).fetchone() == ("bob-sub",)
    at.feedback[0].set_value(1).run()
    with sqlite3.connect(app_env / "audit.sqlite3") as conn:
        assert conn.execute("SELECT actor, rating FROM feedback").fetchall() == [("bob-sub", "up")]

    at.switch_page("views/2_Documents.py").run()
    assert not has_changes_controls(at) and not at.get("text_input")  # no token when sign-in is on
    for page in ADMIN_PAGES:
        assert [e.value for e in signed_in(READER, page).error] == ["Page réservée aux administrateurs."]


def test_an_administrator_named_by_ptce_admins_gets_the_controls_and_the_journal(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTCE_ADMINS", "groups:ptce-admins, alice@exemple.fr")
    at = signed_in(ADMIN, "views/2_Documents.py")
    assert has_changes_controls(at)
    assert {"Évaluation", "Journal d'audit"} <= set(page_links(at))
    journal = signed_in(ADMIN, "views/4_Journal.py")
    assert not journal.error and [b.label for b in journal.get("download_button")] == ["Exporter le journal"]
    by_group = signed_in(READER | {"groups": ["ptce-admins"]}, "views/2_Documents.py")
    assert has_changes_controls(by_group)


def test_an_expired_or_broken_sign_in_goes_back_to_the_sign_in_screen(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTCE_SESSION_HOURS", "12")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets = AUTH
    at.user = ADMIN | {"iat": int(time.time()) - 13 * 3600}
    at.run()
    assert not at.exception and not at.chat_input
    assert [w.value for w in at.warning] == ["Votre session a expiré : reconnectez-vous."]
    assert [b.label for b in at.button] == ["Se connecter"]

    at.user = {"is_logged_in": True, "email": "x@exemple.fr", "iat": int(time.time())}  # no subject
    at.run()
    assert not at.exception and not at.chat_input and [b.label for b in at.button] == ["Se connecter"]
    assert "sub" in at.warning[0].value


# Per-person limits ------------------------------------------------------------------------------------
def test_a_reader_over_the_question_limit_gets_a_french_message(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTCE_QUESTIONS_PER_MINUTE", "1")
    at = signed_in(READER)
    at.chat_input[0].set_value(LEVERS_QUESTION).run()
    at.chat_input[0].set_value("Quel est le rôle des collectivités ?").run()
    assert not at.exception
    assert len(at.session_state["entries"]) == 1
    (error,) = at.error
    assert error.value.startswith("Limite atteinte : 1 question par minute et par personne. Réessayez dans ")
    assert signed_in(ADMIN).chat_input  # someone else can still ask


def test_uploads_past_the_daily_volume_are_refused_with_a_french_message(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTCE_UPLOAD_MB_PER_DAY", "1")
    AuditLog(app_env / "audit.sqlite3").log_event(
        "local", "upload", {"document": "gros.pdf", "bytes": 999_000, "status": "added"}
    )
    at = start("views/2_Documents.py")
    at.file_uploader[0].set_value(("valcourt.txt", NOTE.encode() * 20, "text/plain")).run()
    button(at, "Indexer les fichiers").click().run()
    assert not at.exception and not at.success
    (error,) = at.error
    assert error.value.startswith("Limite atteinte : 1 Mo de documents téléversés par jour et par personne")
    assert not (app_env / "corpus" / "uploads").exists()


def test_ptce_app_hands_the_secrets_file_to_streamlit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import sys

    from typer.testing import CliRunner

    from ptce_assistant.cli import app

    calls: list[list[str]] = []
    monkeypatch.setattr(os, "execv", lambda path, argv: calls.append(argv))
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text("[auth]\n", encoding="utf-8")
    assert CliRunner().invoke(app, ["app", "--secrets", str(secrets_file)]).exit_code == 0
    ((executable, *command),) = calls
    assert executable == sys.executable
    assert command[command.index("--secrets.files") + 1] == str(secrets_file.resolve())
    missing = CliRunner().invoke(app, ["app", "--secrets", str(tmp_path / "absent.toml")])
    assert missing.exit_code == 2 and "introuvable" in missing.output and len(calls) == 1


def test_ptce_app_says_when_the_admin_token_is_too_short(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from typer.testing import CliRunner

    from ptce_assistant.cli import app
    from ptce_assistant.config import get_settings

    monkeypatch.setattr(os, "execv", lambda path, argv: None)
    monkeypatch.setenv("PTCE_ADMIN_TOKEN", "court-4321")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["app"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0 and "PTCE_ADMIN_TOKEN ignoré : 16 caractères au moins" in result.output
    assert "court-4321" not in result.output  # the token itself is never printed
