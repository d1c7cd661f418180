"""SQLite audit log: every answered turn, the feedback given on it, exports and draft eval cases.

One connection per call (safe from any thread); WAL mode and a busy timeout let several app
sessions write at once without losing rows.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from ptce_assistant.answering.answer import Answer
from ptce_assistant.conversation import Turn
from ptce_assistant.errors import PtceError
from ptce_assistant.evals.dataset import EvalCase

Rating = Literal["up", "down"]
ExportFormat = Literal["jsonl", "csv"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
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
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment TEXT
);
CREATE INDEX IF NOT EXISTS feedback_turn ON feedback(turn_id);
"""
_JSON_COLUMNS = ("history", "citations", "consulted", "timings")
EXPORT_FIELDS = (
    "id",
    "created_at",
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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class AuditLog:
    """The turns and feedback of every session, in one SQLite file."""

    def __init__(self, path: Path, busy_timeout_s: float = 30.0) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise PtceError(
                f"journal d'audit inaccessible ({path}: {exc}) : vérifiez PTCE_AUDIT_DB et les droits du dossier"
            ) from None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection, closed on exit (the caller opens transactions itself)."""
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        with closing(conn):
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
            conn.execute("PRAGMA foreign_keys=ON")
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

    def log_turn(self, session_id: str, answer: Answer, corpus_hash: str, history: Sequence[Turn] = ()) -> int:
        """Record one answered turn; returns its id (feedback attaches to it)."""
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
                "INSERT INTO turns (created_at, session_id, question, standalone_query, history, mode, model,"
                " corpus_hash, answer, citations, consulted, abstained, confidence, lang, timings)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def add_feedback(self, turn_id: int, rating: Rating, comment: str | None = None) -> int:
        """Attach a thumbs up/down (and an optional comment) to a turn; the latest one counts."""
        if rating not in ("up", "down"):
            raise PtceError(f"avis « {rating} » inconnu : « up » ou « down » attendu")
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM turns WHERE id = ?", (turn_id,)).fetchone() is None:
                raise PtceError(f"tour {turn_id} introuvable dans le journal d'audit")
            cursor = conn.execute(
                "INSERT INTO feedback (turn_id, created_at, rating, comment) VALUES (?, ?, ?, ?)",
                (turn_id, _now(), rating, (comment or "").strip() or None),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def turns(self) -> list[dict[str, Any]]:
        """Every turn, oldest first, with its feedback list and the latest rating and comment."""
        try:
            with self._connect() as conn:
                turns = conn.execute("SELECT * FROM turns ORDER BY id").fetchall()
                feedback = conn.execute("SELECT * FROM feedback ORDER BY id").fetchall()
        except sqlite3.Error as exc:
            raise PtceError(f"lecture impossible du journal d'audit ({self.path}: {exc})") from None
        by_turn: dict[int, list[dict[str, Any]]] = {}
        for fb in feedback:
            by_turn.setdefault(fb["turn_id"], []).append(
                {"created_at": fb["created_at"], "rating": fb["rating"], "comment": fb["comment"]}
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

    def export(self, format: ExportFormat, out: TextIO) -> int:
        """Write every turn as JSON lines or CSV (JSON-encoded nested columns); returns the row count."""
        records = self.turns()
        if format == "jsonl":
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        elif format == "csv":
            writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
            writer.writeheader()
            for record in records:
                writer.writerow(
                    {
                        field: json.dumps(record[field], ensure_ascii=False)
                        if isinstance(record[field], list | dict)
                        else record[field]
                        for field in EXPORT_FIELDS
                    }
                )
        else:
            raise PtceError(f"format « {format} » inconnu : jsonl ou csv")
        return len(records)

    def draft_cases(self) -> list[EvalCase]:
        """Down-rated turns as draft eval cases, tagged for review (expected quotes left to the reviewer)."""
        cases = []
        for record in self.turns():
            if record["rating"] != "down":
                continue
            history = [Turn.model_validate(t) for t in record["history"]]
            tags = ["from-feedback", "needs-review"]
            tags += ["followup"] if history else []
            tags += ["out-of-corpus"] if record["abstained"] else []
            tags += ["en"] if record["lang"] == "en" else []
            cases.append(
                EvalCase(
                    id=f"feedback-{record['id']}",
                    question=record["question"],
                    history=history,
                    answerable=not record["abstained"],
                    expected_quotes=[],
                    tags=tags,
                    lang=record["lang"],
                )
            )
        return cases
