"""Per-person abuse limits: questions per minute and uploaded volume per day.

They are counted in the audit log, so they hold across sessions, tabs and app processes.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from ptce_assistant.audit import AuditLog
from ptce_assistant.config import Settings
from ptce_assistant.errors import PtceError

QUESTION_WINDOW = timedelta(minutes=1)
UPLOAD_WINDOW = timedelta(days=1)


class QuotaExceededError(PtceError):
    """A person reached one of their limits; the message says when they can try again."""


def _wait(delta: timedelta) -> str:
    """« 42 s », « 12 min », « 3 h » (rounded up: never promise too early)."""
    seconds = max(1, math.ceil(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{math.ceil(seconds / 60)} min"
    return f"{math.ceil(seconds / 3600)} h"


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f}".replace(".", ",") + " Mo"


def check_question_quota(audit: AuditLog, subject: str, settings: Settings, now: datetime | None = None) -> None:
    """Raise QuotaExceededError when `subject` already asked PTCE_QUESTIONS_PER_MINUTE in the last minute."""
    limit = settings.questions_per_minute
    if limit <= 0:
        return
    now = now or datetime.now(UTC)
    asked = audit.questions_since(subject, now - QUESTION_WINDOW)
    if len(asked) < limit:
        return
    free_at = asked[-limit] + QUESTION_WINDOW  # when enough questions have left the window
    raise QuotaExceededError(
        f"Limite atteinte : {limit} question{'s' if limit > 1 else ''} par minute et par personne. "
        f"Réessayez dans {_wait(free_at - now)}."
    )


def check_upload_quota(
    audit: AuditLog, subject: str, settings: Settings, incoming: int, now: datetime | None = None
) -> None:
    """Raise QuotaExceededError when `incoming` bytes would take `subject` past PTCE_UPLOAD_MB_PER_DAY."""
    limit_mb = settings.upload_mb_per_day
    if limit_mb <= 0:
        return
    limit = limit_mb * 1_000_000
    now = now or datetime.now(UTC)
    uploads = audit.uploads_since(subject, now - UPLOAD_WINDOW)
    used = sum(size for _, size in uploads)
    if used + incoming <= limit:
        return
    reached = (
        f"Limite atteinte : {limit_mb} Mo de documents téléversés par jour et par personne "
        f"(déjà {_mb(used)} ces dernières 24 h, {_mb(incoming)} envoyés)."
    )
    if incoming > limit:
        raise QuotaExceededError(
            f"{reached} Cet envoi dépasse à lui seul la limite : envoyez moins de fichiers à la fois."
        )
    remaining = used
    for when, size in uploads:  # the earliest moment enough volume has left the 24-hour window
        remaining -= size
        if remaining + incoming <= limit:
            raise QuotaExceededError(f"{reached} Réessayez dans {_wait(when + UPLOAD_WINDOW - now)}.")
    raise AssertionError("unreachable: with every upload out of the window, incoming fits")
