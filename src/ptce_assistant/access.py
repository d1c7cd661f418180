"""Who may do what: the reader and administrator roles, and the person each action is traced to.

Roles are decided on the server from the settings (`PTCE_ADMINS`, `PTCE_ADMIN_TOKEN`,
`PTCE_LOCAL_ADMIN`) and from the identity token's claims, never from anything the browser sends.
"""

from __future__ import annotations

import getpass
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from ptce_assistant.config import Settings
from ptce_assistant.errors import PtceError

Role = Literal["lecteur", "administrateur"]
LOCAL_SUBJECT = "local"
LOOPBACK = frozenset({"127.0.0.1", "::1"})
MIN_ADMIN_TOKEN_CHARS = 16


class AccessDeniedError(PtceError):
    """An action reserved to administrators was attempted without the role."""

    def __init__(self, action: str) -> None:
        super().__init__(
            f"{action} : action réservée aux administrateurs. Connectez-vous avec un compte administrateur "
            "(voir docs/security.md)."
        )
        self.action = action


@dataclass(frozen=True)
class Person:
    """Someone using the assistant: `subject` goes into the audit log, `name` is only displayed."""

    subject: str
    role: Role
    name: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "administrateur"


def require_admin(person: Person, action: str) -> None:
    """Raise AccessDeniedError unless `person` is an administrator."""
    if not person.is_admin:
        raise AccessDeniedError(action)


def _claim_values(claims: Mapping[str, Any], name: str) -> list[str]:
    value = claims.get(name)
    if isinstance(value, list | tuple | set):
        return [str(item) for item in value]
    return [] if value is None else [str(value)]


def matches_admin_rule(rule: str, claims: Mapping[str, Any]) -> bool:
    """One PTCE_ADMINS entry: an e-mail address (verified, case-insensitive) or CLAIM:VALUE."""
    if ":" in rule:
        claim, _, expected = rule.partition(":")
        return expected.strip() in _claim_values(claims, claim.strip())
    if claims.get("email_verified") is False:  # an unverified address names nobody
        return False
    return any(email.casefold() == rule.casefold() for email in _claim_values(claims, "email"))


def role_from_claims(claims: Mapping[str, Any], settings: Settings) -> Role:
    """The role of a signed-in person, from the identity token's claims and PTCE_ADMINS."""
    if any(matches_admin_rule(rule, claims) for rule in settings.admins):
        return "administrateur"
    return "lecteur"


def signed_in_person(claims: Mapping[str, Any], settings: Settings) -> Person:
    """The person an OpenID Connect identity names; the subject (`sub`) is what the audit log keeps."""
    subject = str(claims.get("sub") or "")
    if not subject:
        raise PtceError("le fournisseur d'identité n'a pas transmis d'identifiant (claim « sub ») : reconnectez-vous")
    name = claims.get("name") or " ".join(
        str(claims[part]) for part in ("given_name", "usual_name", "family_name") if claims.get(part)
    )
    return Person(
        subject=subject, role=role_from_claims(claims, settings), name=str(name or claims.get("email") or subject)
    )


def sign_in_expired(claims: Mapping[str, Any], settings: Settings, now: datetime | None = None) -> bool:
    """True when the sign-in (the token's `iat`) is older than PTCE_SESSION_HOURS, or has no date."""
    issued = claims.get("iat")
    if not isinstance(issued, int | float):
        return True
    now = now or datetime.now(UTC)
    return now.timestamp() - issued > settings.session_hours * 3600


def admin_token_usable(settings: Settings) -> bool:
    """A PTCE_ADMIN_TOKEN is set and long enough to resist guessing."""
    token = settings.admin_token
    return token is not None and len(token.get_secret_value()) >= MIN_ADMIN_TOKEN_CHARS


def admin_token_matches(candidate: str, settings: Settings) -> bool:
    """The candidate equals PTCE_ADMIN_TOKEN (compared in constant time); never true without a usable token."""
    if not admin_token_usable(settings) or settings.admin_token is None:
        return False
    return hmac.compare_digest(candidate.encode(), settings.admin_token.get_secret_value().encode())


def local_person(client_ip: str | None, token_verified: bool, settings: Settings) -> Person:
    """Sign-in off: one shared "local" identity; administrator on 127.0.0.1 or with the admin token."""
    local = settings.local_admin and client_ip in LOOPBACK
    return Person(subject=LOCAL_SUBJECT, role="administrateur" if local or token_verified else "lecteur")


def os_person() -> Person:
    """Whoever runs the command line: the OS account (they can read the files anyway)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        user = "inconnu"
    return Person(subject=f"os:{user}", role="administrateur", name=user)
