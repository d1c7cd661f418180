"""SQLite audit log: every answered turn, the feedback given on it, corpus changes and exports,
each traced to the person who did it; exports, draft eval cases and the personal-data purges.

One connection per call (safe from any thread); WAL mode and a busy timeout let several app
sessions write at once without losing rows. Deleted rows are overwritten (`secure_delete`), so a
purge does not leave questions readable in the file's free pages.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TextIO

from ptce_assistant.answering.answer import Answer
from ptce_assistant.config import Settings
from ptce_assistant.conversation import Turn
from ptce_assistant.errors import PtceError

Rating = Literal["up", "down"]
ExportFormat = Literal["jsonl", "csv"]
ExportTable = Literal["turns", "events"]
EventAction = Literal["upload", "remove", "ingest", "export", "purge"]
UNKNOWN_ACTOR = "inconnu"  # rows written before the log recorded who acted
SYSTEM_ACTOR = "système"  # the automatic retention purge
PURGE_EVERY_S = 3600.0  # a long-running app applies the retention at most once an hour

_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    session_id TEXT NOT NULL,
    question TEXT NOT NULL,
    standalone_query TEXT NOT NULL,
    history TEXT NOT NULL,
    mode TEXT NOT NULL,
    model TEXT NOT NULL,
    corpus_hash TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL,
    consulted TEXT NOT NULL,
    abstained INTEGER NOT NULL,
    confidence REAL NOT NULL,
    lang TEXT NOT NULL,
    timings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    turn_id INTEGER NOT NULL REFERENCES turns(id),
    created_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment TEXT
);
CREATE INDEX IF NOT EXISTS feedback_turn ON feedback(turn_id);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_actor ON events(actor, created_at);
CREATE INDEX IF NOT EXISTS events_created ON events(created_at);
"""
# Logs written before actors were recorded get the column (and its indexes) when first opened.
_ACTOR_COLUMNS = ("turns", "feedback")
_ACTOR_INDEXES = """
CREATE INDEX IF NOT EXISTS turns_actor ON turns(actor, created_at);
CREATE INDEX IF NOT EXISTS turns_created ON turns(created_at);
CREATE INDEX IF NOT EXISTS feedback_actor ON feedback(actor);
"""
_JSON_COLUMNS = ("history", "citations", "consulted", "timings")
EXPORT_FIELDS = (
    "id",
    "created_at",
    "actor",
    "session_id",
    "question",
    "standalone_query",
    "history",
    "mode",
    "model",
    "corpus_hash",
    "answer",
    "citations",
    "consulted",
    "abstained",
    "confidence",
    "lang",
    "timings",
    "rating",
    "comment",
    "feedback",
)
EVENT_FIELDS = ("id", "created_at", "actor", "action", "detail")


def _now() -> str:
    return _stamp(datetime.now(UTC))


def _stamp(moment: datetime) -> str:
    """The one timestamp format of the log (UTC, ISO): comparing the strings compares the dates."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Purged:
    """How many rows a purge erased."""

    turns: int = 0
    feedback: int = 0
    events: int = 0

    @property
    def total(self) -> int:
        return self.turns + self.feedback + self.events


class AuditLog:
    """The turns, feedback and corpus events of every session, in one SQLite file.

    `retention_days` > 0: entries older than that are purged when the log is opened, then at most
    once an hour as it is written to.
    """

    def __init__(self, path: Path, busy_timeout_s: float = 30.0, retention_days: int = 0) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self.retention_days = retention_days
        self._purged_at = float("-inf")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._switch_to_wal()
        except (OSError, sqlite3.Error) as exc:
            raise PtceError(
                f"journal d'audit inaccessible ({path}: {exc}) : vérifiez PTCE_AUDIT_DB et les droits du dossier"
            ) from None
        with self._write() as conn:  # one writer at a time: two processes never add the column twice
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            for table in _ACTOR_COLUMNS:
                columns = {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}
                if "actor" not in columns:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN actor TEXT NOT NULL DEFAULT '{UNKNOWN_ACTOR}'")
            for statement in filter(str.strip, _ACTOR_INDEXES.split(";")):
                conn.execute(statement)
        self._apply_retention()

    def _switch_to_wal(self) -> None:
        """WAL mode, retried: SQLite answers "locked" at once, without its busy handler, when several
        connections switch a new file together."""
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                with self._connect() as conn:
                    conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection, closed on exit (the caller opens transactions itself)."""
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        with closing(conn):
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA secure_delete=ON")
            yield conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE takes the lock up front so writers queue, never deadlock."""
        try:
            with self._connect() as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise PtceError(f"écriture impossible dans le journal d'audit ({self.path}: {exc})") from None

    def log_turn(
        self, session_id: str, answer: Answer, corpus_hash: str, history: Sequence[Turn] = (), *, actor: str
    ) -> int:
        """Record one answered turn asked by `actor` (a subject); returns its id (feedback attaches to it)."""
        self._apply_retention()
        citations = [c.model_dump(mode="json") for c in answer.citations]
        consulted = [
            {
                "rank": h.rank,
                "chunk_id": h.chunk.chunk_id,
                "doc_id": h.chunk.doc_id,
                "score": h.score,
                "text": h.chunk.text,
            }
            for h in answer.consulted
        ]
        row = (
            _now(),
            actor,
            session_id,
            answer.question,
            answer.standalone_query,
            json.dumps([t.model_dump() for t in history], ensure_ascii=False),
            answer.mode,
            answer.model,
            corpus_hash,
            answer.answer,
            json.dumps(citations, ensure_ascii=False),
            json.dumps(consulted, ensure_ascii=False),
            int(answer.abstained),
            answer.confidence,
            answer.lang,
            json.dumps(answer.timings_ms),
        )
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO turns (created_at, actor, session_id, question, standalone_query, history, mode, model,"
                " corpus_hash, answer, citations, consulted, abstained, confidence, lang, timings)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def add_feedback(self, turn_id: int, rating: Rating, comment: str | None = None, *, actor: str) -> int:
        """Attach `actor`'s thumbs up/down (and an optional comment) to a turn; the latest one counts."""
        if rating not in ("up", "down"):
            raise PtceError(f"avis « {rating} » inconnu : « up » ou « down » attendu")
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM turns WHERE id = ?", (turn_id,)).fetchone() is None:
                raise PtceError(f"tour {turn_id} introuvable dans le journal d'audit")
            cursor = conn.execute(
                "INSERT INTO feedback (turn_id, created_at, actor, rating, comment) VALUES (?, ?, ?, ?, ?)",
                (turn_id, _now(), actor, rating, (comment or "").strip() or None),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A connection for reading; a SQLite failure becomes one French line."""
        try:
            with self._connect() as conn:
                yield conn
        except sqlite3.Error as exc:
            raise PtceError(f"lecture impossible du journal d'audit ({self.path}: {exc})") from None

    def log_event(self, actor: str, action: EventAction, detail: Mapping[str, Any]) -> int:
        """Record a corpus change or an export by `actor`; `detail` never holds a secret."""
        self._apply_retention()
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO events (created_at, actor, action, detail) VALUES (?, ?, ?, ?)",
                (_now(), actor, action, json.dumps(dict(detail), ensure_ascii=False)),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def turns(self, user: str | None = None) -> list[dict[str, Any]]:
        """Every turn (or `user`'s), oldest first, with its feedback list and the latest rating and comment."""
        where, params = ("WHERE actor = ?", (user,)) if user is not None else ("", ())
        with self._read() as conn:
            turns = conn.execute(f"SELECT * FROM turns {where} ORDER BY id", params).fetchall()
            feedback = conn.execute(
                f"SELECT * FROM feedback WHERE turn_id IN (SELECT id FROM turns {where}) ORDER BY id", params
            ).fetchall()
        by_turn: dict[int, list[dict[str, Any]]] = {}
        for fb in feedback:
            by_turn.setdefault(fb["turn_id"], []).append(
                {"created_at": fb["created_at"], "actor": fb["actor"], "rating": fb["rating"], "comment": fb["comment"]}
            )
        records = []
        for turn in turns:
            record = dict(turn)
            for column in _JSON_COLUMNS:
                record[column] = json.loads(record[column])
            record["abstained"] = bool(record["abstained"])
            given = by_turn.get(record["id"], [])
            record["feedback"] = given
            record["rating"] = given[-1]["rating"] if given else None
            record["comment"] = next((f["comment"] for f in reversed(given) if f["comment"]), None)
            records.append(record)
        return records

    def events(self, user: str | None = None) -> list[dict[str, Any]]:
        """Uploads, removals, ingestions, exports and purges (or `user`'s), oldest first."""
        where, params = ("WHERE actor = ?", (user,)) if user is not None else ("", ())
        with self._read() as conn:
            rows = conn.execute(f"SELECT * FROM events {where} ORDER BY id", params).fetchall()
        return [dict(row) | {"detail": json.loads(row["detail"])} for row in rows]

    def export(
        self,
        format: ExportFormat,
        out: TextIO,
        *,
        actor: str,
        user: str | None = None,
        table: ExportTable = "turns",
    ) -> int:
        """Write the turns (or events), all or `user`'s, as JSON lines or CSV (nested columns JSON-encoded).

        The export is itself traced to `actor`. Returns the row count.
        """
        if format not in ("jsonl", "csv"):
            raise PtceError(f"format « {format} » inconnu : jsonl ou csv")
        records = self.turns(user) if table == "turns" else self.events(user)
        if format == "jsonl":
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            fields = EXPORT_FIELDS if table == "turns" else EVENT_FIELDS
            writer = csv.DictWriter(out, fieldnames=fields)
            writer.writeheader()
            for record in records:
                writer.writerow(
                    {
                        field: json.dumps(record[field], ensure_ascii=False)
                        if isinstance(record[field], list | dict)
                        else record[field]
                        for field in fields
                    }
                )
        # Whose entries were exported stays out of the trace: it would outlive their erasure.
        detail = {"format": format, "table": table, "rows": len(records), "one_person": user is not None}
        self.log_event(actor, "export", detail)
        return len(records)

    def questions_since(self, actor: str, since: datetime) -> list[datetime]:
        """When `actor` asked each question recorded since `since`, oldest first (for rate limits)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT created_at FROM turns WHERE actor = ? AND created_at >= ? ORDER BY created_at",
                (actor, _stamp(since)),
            ).fetchall()
        return [datetime.fromisoformat(row["created_at"]) for row in rows]

    def uploads_since(self, actor: str, since: datetime) -> list[tuple[datetime, int]]:
        """When and how many bytes `actor` uploaded since `since`, oldest first (for volume limits)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT created_at, json_extract(detail, '$.bytes') AS bytes FROM events"
                " WHERE actor = ? AND action = 'upload' AND created_at >= ? ORDER BY created_at",
                (actor, _stamp(since)),
            ).fetchall()
        return [(datetime.fromisoformat(row["created_at"]), int(row["bytes"] or 0)) for row in rows]

    def purge_older_than(self, days: int, *, actor: str = SYSTEM_ACTOR, now: datetime | None = None) -> Purged:
        """Erase every entry older than `days` days (feedback goes with its turn); traced when any was."""
        cutoff = _stamp((now or datetime.now(UTC)) - timedelta(days=days))
        purged = self._purge("created_at < ?", (cutoff,))
        if purged.total:
            self.log_event(actor, "purge", {"older_than_days": days, "rows": purged.total})
        return purged

    def purge_user(self, subject: str, *, actor: str) -> Purged:
        """Erase everything `subject` asked, rated, uploaded, removed or exported (right to erasure).

        The erasure is traced to `actor` without the erased subject: the log keeps that it happened, not whom.
        """
        purged = self._purge("actor = ?", (subject,))
        self.log_event(actor, "purge", {"one_person": True, "rows": purged.total})
        return purged

    def _purge(self, condition: str, params: tuple[Any, ...]) -> Purged:
        with self._write() as conn:
            turn_ids = f"SELECT id FROM turns WHERE {condition}"
            feedback = conn.execute(
                f"DELETE FROM feedback WHERE {condition} OR turn_id IN ({turn_ids})", params + params
            ).rowcount
            turns = conn.execute(f"DELETE FROM turns WHERE {condition}", params).rowcount
            events = conn.execute(f"DELETE FROM events WHERE {condition}", params).rowcount
        try:
            with self._connect() as conn:  # erased rows must not linger in the write-ahead log either
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass  # a reader holds the log open: the next checkpoint overwrites it
        return Purged(turns=turns, feedback=feedback, events=events)

    def _apply_retention(self) -> None:
        """Purge entries past the retention period, at most once every PURGE_EVERY_S in this process."""
        if self.retention_days <= 0 or time.monotonic() - self._purged_at < PURGE_EVERY_S:
            return
        self._purged_at = time.monotonic()
        self.purge_older_than(self.retention_days)


def open_audit_log(settings: Settings) -> AuditLog:
    """The audit log of PTCE_AUDIT_DB, purging entries older than PTCE_AUDIT_RETENTION_DAYS."""
    return AuditLog(settings.audit_db, retention_days=settings.audit_retention_days)
