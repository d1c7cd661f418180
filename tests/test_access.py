"""Roles and identities: who is an administrator, the local mode, the admin token, expired sign-ins, quotas."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ptce_assistant.access import (
    AccessDeniedError,
    Person,
    admin_token_matches,
    local_person,
    os_person,
    require_admin,
    role_from_claims,
    sign_in_expired,
    signed_in_person,
)
from ptce_assistant.audit import AuditLog
from ptce_assistant.config import Settings
from ptce_assistant.errors import PtceError
from ptce_assistant.quotas import QuotaExceededError, check_question_quota, check_upload_quota
from test_audit import make_answer

TOKEN = "jeton-administrateur-de-test-0123"


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# Roles from the identity token's claims ------------------------------------------------------------
def test_admins_are_named_by_verified_email_or_by_a_claim_value() -> None:
    config = settings(admins=["Alice@Exemple.fr", "groups:ptce-admins", "sub:agent-42"])
    assert role_from_claims({"sub": "a", "email": "alice@exemple.fr"}, config) == "administrateur"
    assert role_from_claims({"sub": "a", "email": "alice@exemple.fr", "email_verified": False}, config) == "lecteur"
    assert role_from_claims({"sub": "g", "groups": ["lecteurs", "ptce-admins"]}, config) == "administrateur"
    assert role_from_claims({"sub": "g", "groups": ["ptce-admins-old"]}, config) == "lecteur"  # no prefix match
    assert role_from_claims({"sub": "agent-42"}, config) == "administrateur"
    assert role_from_claims({"sub": "bob", "email": "bob@exemple.fr"}, config) == "lecteur"
    assert role_from_claims({"sub": "alice", "email": "alice@exemple.fr"}, settings()) == "lecteur"  # nobody by default


def test_ptce_admins_is_read_as_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTCE_ADMINS", " alice@exemple.fr, groups:ptce-admins ,")
    assert Settings(_env_file=None).admins == ["alice@exemple.fr", "groups:ptce-admins"]  # type: ignore[call-arg]


def test_a_signed_in_person_is_traced_by_subject_and_shown_by_name() -> None:
    proconnect = {"sub": "f1e2d3", "given_name": "Camille", "usual_name": "Martin", "email": "c.martin@mairie.fr"}
    person = signed_in_person(proconnect, settings(admins=["c.martin@mairie.fr"]))
    assert person == Person(subject="f1e2d3", role="administrateur", name="Camille Martin")
    assert signed_in_person({"sub": "x", "email": "x@y.fr"}, settings()).name == "x@y.fr"
    with pytest.raises(PtceError, match="sub"):
        signed_in_person({"email": "x@y.fr"}, settings())


def test_a_sign_in_older_than_the_session_length_has_expired() -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    config = settings(session_hours=12)
    assert not sign_in_expired({"iat": (now - timedelta(hours=11)).timestamp()}, config, now)
    assert sign_in_expired({"iat": (now - timedelta(hours=13)).timestamp()}, config, now)
    assert sign_in_expired({}, config, now)  # no date: asked again rather than trusted forever


# Sign-in off -----------------------------------------------------------------------------------------
def test_without_sign_in_only_this_machine_or_the_token_holder_is_administrator() -> None:
    config = settings()
    assert local_person("127.0.0.1", False, config).is_admin
    assert local_person("::1", False, config).is_admin
    for remote in ("192.168.1.20", "10.0.0.1", None):
        assert local_person(remote, False, config) == Person(subject="local", role="lecteur")
    assert local_person("192.168.1.20", True, config).is_admin
    assert not local_person("127.0.0.1", False, settings(local_admin=False)).is_admin  # behind a local proxy


def test_the_admin_token_has_no_default_and_is_compared_whole() -> None:
    assert settings().admin_token is None
    assert not admin_token_matches("", settings())
    config = settings(admin_token=TOKEN)
    assert admin_token_matches(TOKEN, config)
    assert not admin_token_matches(TOKEN[:-1], config) and not admin_token_matches(TOKEN + "x", config)
    short = settings(admin_token="secret")
    assert not admin_token_matches("secret", short)  # too short to resist guessing: never accepted
    assert TOKEN not in repr(config) and TOKEN not in str(config.model_dump())


def test_require_admin_refuses_a_reader_in_french() -> None:
    require_admin(Person(subject="a", role="administrateur"), "Ajouter des documents")
    with pytest.raises(AccessDeniedError, match="Ajouter des documents : action réservée aux administrateurs"):
        require_admin(Person(subject="b", role="lecteur"), "Ajouter des documents")


def test_the_command_line_acts_as_the_os_user() -> None:
    assert os_person().subject == f"os:{getpass.getuser()}"


# Abuse limits ----------------------------------------------------------------------------------------
@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit.sqlite3")


def test_questions_per_minute_are_limited_per_person(log: AuditLog) -> None:
    config = settings(questions_per_minute=3)
    for n in range(3):
        check_question_quota(log, "alice", config)
        log.log_turn("s", make_answer(f"Q{n} ?"), "h", actor="alice")
    with pytest.raises(QuotaExceededError, match=r"Limite atteinte : 3 questions par minute.*Réessayez dans \d+ s"):
        check_question_quota(log, "alice", config)
    check_question_quota(log, "bob", config)  # someone else is not affected
    check_question_quota(log, "alice", config, now=datetime.now(UTC) + timedelta(seconds=61))
    check_question_quota(log, "alice", settings(questions_per_minute=0))  # 0: no limit


def test_upload_volume_per_day_is_limited_per_person(log: AuditLog) -> None:
    config = settings(upload_mb_per_day=2)
    log.log_event("alice", "upload", {"document": "a.pdf", "bytes": 1_500_000, "status": "added"})
    check_upload_quota(log, "alice", config, 400_000)
    with pytest.raises(QuotaExceededError, match=r"2 Mo de documents.*déjà 1,5 Mo.*Réessayez dans \d+ h"):
        check_upload_quota(log, "alice", config, 600_000)
    with pytest.raises(QuotaExceededError, match="à lui seul"):
        check_upload_quota(log, "bob", config, 2_500_000)
    check_upload_quota(log, "bob", config, 1_900_000)
    check_upload_quota(log, "alice", config, 600_000, now=datetime.now(UTC) + timedelta(days=1, seconds=1))
