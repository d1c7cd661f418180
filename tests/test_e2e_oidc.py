"""Sign-in end to end: a real OpenID Connect provider (oidc-provider-mock) and `ptce app` on 127.0.0.1,
headless Chromium through the real redirects.

An administrator signs in, uploads a document, gets an answer from it; a reader signs in and cannot
change the corpus, even by opening the pages directly; the administrator removes the document; a
forged, expired or stale session goes back to sign-in without a traceback; the audit log names each
person and holds no token or secret.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from browser import (
    LOAD_TIMEOUT_MS,
    SCREENSHOTS,
    STEP_TIMEOUT_MS,
    Server,
    chat_box,
    chromium,
    running_app,
    settle,
    submit,
)
from servers import free_port, serving, wait_until

pytestmark = pytest.mark.browser

ALICE = {"sub": "alice-sub", "email": "alice@exemple.fr", "name": "Alice Admin"}  # named by PTCE_ADMINS
BOB = {"sub": "bob-sub", "email": "bob@exemple.fr", "name": "Bob Lecteur"}
USER_COOKIE = "_streamlit_user"
TOKENS_COOKIE = "_streamlit_user_tokens"
NOTE_NAME = "tiers-lieu-brevannes.txt"
NOTE = (
    "Le tiers-lieu de Brévannes\n\n"
    "Le tiers-lieu de Brévannes accueille trois coopératives de réemploi et une recyclerie solidaire "
    "soutenues par la communauté de communes.\n"
)
QUESTION = "Qui le tiers-lieu de Brévannes accueille-t-il ?"


@dataclass
class SignInSetup:
    app: Server
    provider_url: str
    secrets: dict[str, str]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignInSetup]:
    """The provider, then the app configured against it (secrets.toml [auth]), both on 127.0.0.1."""
    root = tmp_path_factory.mktemp("oidc")
    provider_port = free_port()
    provider_url = f"http://127.0.0.1:{provider_port}"
    provider = [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(provider_port)]
    for user in (ALICE, BOB):
        provider += ["--user-claims", json.dumps(user)]
    keys = {name: secrets.token_urlsafe(24) for name in ("cookie_secret", "client_secret", "admin_token", "api_key")}
    ready = f"{provider_url}/.well-known/openid-configuration"
    with serving(provider, dict(os.environ), root / "provider.log", ready, "the OpenID Connect provider"):
        app_root = root / "app"
        app_root.mkdir()
        app_port = free_port()
        secrets_file = root / "secrets.toml"
        secrets_file.write_text(
            "[auth]\n"
            f'redirect_uri = "http://127.0.0.1:{app_port}/oauth2callback"\n'
            f'cookie_secret = "{keys["cookie_secret"]}"\n'
            'client_id = "ptce-assistant"\n'
            f'client_secret = "{keys["client_secret"]}"\n'
            f'server_metadata_url = "{ready}"\n',
            encoding="utf-8",
        )
        env = {
            "PTCE_ADMINS": ALICE["email"],
            "PTCE_ADMIN_TOKEN": keys["admin_token"],  # set to prove it never reaches the log
            "PTCE_OPENAI_API_KEY": keys["api_key"],
        }
        with running_app(app_root, env, ["--secrets", str(secrets_file)], port=app_port) as app:
            yield SignInSetup(app, provider_url, keys)


@pytest.fixture(scope="module")
def browser(setup: SignInSetup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("chromium-oidc")) as context:
        yield context


@pytest.fixture(scope="module")
def page(browser: Any) -> Any:
    return browser.new_page()


def sign_in_button(tab: Any) -> Any:
    return tab.get_by_role("button", name="Se connecter")


def sign_in(tab: Any, setup: SignInSetup, user: dict[str, str]) -> None:
    """From the app's sign-in screen, through the provider's form, back to the chat."""
    tab.goto(setup.app.url)
    sign_in_button(tab).click(timeout=LOAD_TIMEOUT_MS)
    tab.wait_for_url(f"{setup.provider_url}/**", timeout=STEP_TIMEOUT_MS)
    tab.get_by_role("button", name=user["sub"], exact=True).click()
    tab.wait_for_url(f"{setup.app.url}/**", timeout=STEP_TIMEOUT_MS)
    chat_box(tab).wait_for(timeout=LOAD_TIMEOUT_MS)
    tab.get_by_text(f"Connecté : {user['name']}").wait_for(timeout=STEP_TIMEOUT_MS)


def sign_out(tab: Any, setup: SignInSetup) -> None:
    """« Se déconnecter », the provider's end-session page, back to the sign-in screen."""
    tab.get_by_role("button", name="Se déconnecter").click()
    tab.wait_for_url(f"{setup.provider_url}/**", timeout=STEP_TIMEOUT_MS)
    tab.get_by_role("button", name="End session").click()
    sign_in_button(tab).wait_for(timeout=STEP_TIMEOUT_MS)


def open_page(tab: Any, setup: SignInSetup, path: str) -> None:
    tab.goto(f"{setup.app.url}/{path}")
    tab.get_by_role("heading").first.wait_for(timeout=LOAD_TIMEOUT_MS)
    settle(tab)


def assert_no_traceback(tab: Any) -> None:
    text = tab.locator("body").inner_text()
    assert "Traceback" not in text and "Error" not in text and "Exception" not in text


def audit_rows(setup: SignInSetup, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(setup.app.audit_db) as conn:
        return conn.execute(query).fetchall()


def test_nothing_shows_before_signing_in(setup: SignInSetup, page: Any) -> None:
    for path in ("", "Documents", "Leviers", "Evaluation", "Journal"):
        page.goto(f"{setup.app.url}/{path}")
        sign_in_button(page).wait_for(timeout=LOAD_TIMEOUT_MS)
        assert chat_box(page).count() == 0 and page.locator("input[type=file]").count() == 0
        assert page.get_by_text("Documents du corpus").count() == 0
        assert page.get_by_role("link", name="Journal").count() == 0  # not even the pages' names
        assert_no_traceback(page)
        if not path:
            settle(page)
            page.screenshot(path=str(SCREENSHOTS / "sign-in.png"))  # docs/security.md shows it


def test_an_administrator_uploads_a_document_and_gets_an_answer_from_it(
    setup: SignInSetup, page: Any, tmp_path: Path
) -> None:
    sign_in(page, setup, ALICE)
    assert page.get_by_text("Connecté : Alice Admin · administrateur").count() == 1
    open_page(page, setup, "Documents")
    note = tmp_path / NOTE_NAME
    note.write_text(NOTE, encoding="utf-8")
    page.locator("input[type=file]").set_input_files(str(note))
    page.get_by_role("button", name="Indexer les fichiers").click()
    page.get_by_text(f"{NOTE_NAME} : ajouté").wait_for(timeout=STEP_TIMEOUT_MS)

    page.goto(setup.app.url)
    submit(page, QUESTION)
    card = page.locator("#t1-source-1")
    card.wait_for(timeout=STEP_TIMEOUT_MS)
    assert "trois coopératives de réemploi" in card.inner_text()
    assert audit_rows(setup, "SELECT actor, action FROM events") == [("alice-sub", "upload")]
    wait_until(lambda: audit_rows(setup, "SELECT actor FROM turns") == [("alice-sub",)], 30, "alice's turn")
    sign_out(page, setup)


def test_a_reader_cannot_change_the_corpus_even_by_opening_the_pages(setup: SignInSetup, page: Any) -> None:
    sign_in(page, setup, BOB)
    assert page.get_by_text("Connecté : Bob Lecteur · lecteur").count() == 1
    sidebar = page.locator("[data-testid='stSidebar']")
    assert sidebar.get_by_text("Évaluation").count() == 0 and sidebar.get_by_text("Journal d'audit").count() == 0
    submit(page, QUESTION)  # readers ask, and are traced
    page.locator("#t1-source-1").wait_for(timeout=STEP_TIMEOUT_MS)
    traced = [("alice-sub",), ("bob-sub",)]
    wait_until(lambda: audit_rows(setup, "SELECT actor FROM turns ORDER BY id") == traced, 30, "bob's turn")

    open_page(page, setup, "Documents")
    page.get_by_text("Consultation seule").wait_for(timeout=STEP_TIMEOUT_MS)
    assert page.locator("input[type=file]").count() == 0
    assert page.get_by_role("button", name="Indexer les fichiers").count() == 0
    assert page.get_by_role("button", name="Retirer").count() == 0
    assert page.get_by_text("Jeton administrateur").count() == 0  # sign-in on: no token to try
    for path in ("Evaluation", "Journal"):
        open_page(page, setup, path)
        page.get_by_text("Page réservée aux administrateurs.").wait_for(timeout=STEP_TIMEOUT_MS)
        assert page.get_by_role("button", name="Exporter le journal").count() == 0
        assert_no_traceback(page)
    assert (setup.app.root / "corpus" / "uploads" / NOTE_NAME).exists()
    sign_out(page, setup)


def test_the_administrator_removes_the_document(setup: SignInSetup, page: Any) -> None:
    sign_in(page, setup, ALICE)
    open_page(page, setup, "Documents")
    page.get_by_role("button", name="Retirer").click()
    page.get_by_text("retiré du corpus").wait_for(timeout=STEP_TIMEOUT_MS)
    assert not (setup.app.root / "corpus" / "uploads" / NOTE_NAME).exists()
    assert audit_rows(setup, "SELECT actor, action FROM events ORDER BY id") == [
        ("alice-sub", "upload"),
        ("alice-sub", "remove"),
    ]


def test_the_administrator_exports_the_journal_and_the_export_is_traced(setup: SignInSetup, page: Any) -> None:
    open_page(page, setup, "Journal")
    with page.expect_download(timeout=STEP_TIMEOUT_MS) as download:
        page.get_by_role("button", name="Exporter le journal").click()
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["actor"] for line in lines] == ["alice-sub", "bob-sub"]
    assert audit_rows(setup, "SELECT actor, action FROM events ORDER BY id DESC LIMIT 1") == [("alice-sub", "export")]


def _cookie(browser: Any, name: str) -> str:
    return next(c["value"] for c in browser.cookies() if c["name"] == name)


def test_the_audit_log_names_people_and_holds_no_token_or_secret(setup: SignInSetup, browser: Any) -> None:
    tokens = json.loads(
        URLSafeTimedSerializer(setup.secrets["cookie_secret"], salt=TOKENS_COOKIE).loads(
            _cookie(browser, TOKENS_COOKIE)
        )
    )
    assert tokens["id_token"] and tokens["access_token"]
    raw = b"".join(path.read_bytes() for path in setup.app.audit_db.parent.glob("audit.sqlite3*"))
    assert b"alice-sub" in raw and b"bob-sub" in raw
    for name, value in {**setup.secrets, **tokens, "user cookie": _cookie(browser, USER_COOKIE)}.items():
        assert value.encode() not in raw, name
    assert not audit_rows(setup, "SELECT 1 FROM turns WHERE actor NOT IN ('alice-sub', 'bob-sub')")


def _signed(secret: str, name: str, payload: dict[str, Any], age_s: float = 0) -> str:
    """A cookie as Streamlit signs it (itsdangerous, the cookie name as salt), dated `age_s` ago."""

    class Dated(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - age_s)

    return str(URLSafeTimedSerializer(secret, salt=name, signer=Dated).dumps(json.dumps(payload)))


def test_a_forged_expired_or_stale_session_goes_back_to_sign_in(setup: SignInSetup, page: Any, browser: Any) -> None:
    secret = setup.secrets["cookie_secret"]
    genuine = json.loads(URLSafeTimedSerializer(secret, salt=USER_COOKIE).loads(_cookie(browser, USER_COOKIE)))
    assert genuine["sub"] == "alice-sub" and genuine["is_logged_in"] is True
    attempts = {
        "forged": "n-importe-quoi." + _cookie(browser, USER_COOKIE)[-20:],
        "signed with another secret": _signed("un-autre-secret", USER_COOKIE, genuine),
        "cookie past its 30 days": _signed(secret, USER_COOKIE, genuine, age_s=32 * 86400),
        "sign-in older than PTCE_SESSION_HOURS": _signed(
            secret, USER_COOKIE, genuine | {"iat": time.time() - 13 * 3600}
        ),
    }
    for what, value in attempts.items():
        browser.add_cookies([{"name": USER_COOKIE, "value": value, "url": setup.app.url}])
        page.goto(setup.app.url)
        sign_in_button(page).wait_for(timeout=LOAD_TIMEOUT_MS)
        assert chat_box(page).count() == 0, what
        assert_no_traceback(page)
    page.get_by_text("Votre session a expiré : reconnectez-vous.").wait_for(timeout=STEP_TIMEOUT_MS)

    page.goto(f"{setup.app.url}/oauth2callback?code=vole&state=inconnu")  # a replayed or forged callback
    sign_in_button(page).wait_for(timeout=LOAD_TIMEOUT_MS)
    assert chat_box(page).count() == 0
    assert_no_traceback(page)
