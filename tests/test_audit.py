"""The SQLite audit log: turns, feedback, events by person, exports, purges, draft eval cases, concurrent writers."""

from __future__ import annotations

import csv
import getpass
import io
import json
import sqlite3
import threading
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ptce_assistant.answering.answer import Answer, Citation
from ptce_assistant.audit import EXPORT_FIELDS, SYSTEM_ACTOR, UNKNOWN_ACTOR, AuditLog
from ptce_assistant.chunking import Chunk
from ptce_assistant.conversation import Turn
from ptce_assistant.errors import PtceError
from ptce_assistant.evals.dataset import EvalCase, cases_from_feedback
from ptce_assistant.retrieval import Hit

ALICE = "alice-sub"
QUOTE = "Soutenir l'emploi et les fonctions de coordination et de recherche et développement"


def make_answer(question: str = "Quel est le septième levier ?", abstained: bool = False, lang: str = "fr") -> Answer:
    chunk = Chunk(
        chunk_id="etude.txt#0018",
        doc_id="etude.txt",
        title="Étude",
        text=QUOTE + " ; fin.",
        breadcrumb=["Étude", "8 leviers"],
        list_position=7,
        list_length=8,
        start=100,
        end=100 + len(QUOTE) + 7,
    )
    citation = Citation(
        n=1,
        chunk_id=chunk.chunk_id,
        doc_id="etude.txt",
        title="Étude",
        breadcrumb=chunk.breadcrumb,
        page=None,
        quote=QUOTE,
        start=100,
        end=100 + len(QUOTE),
    )
    return Answer(
        question=question,
        standalone_query=question + " (levier 7)",
        answer=f"« {QUOTE} » [1]",
        abstained=abstained,
        confidence=0.91,
        citations=[] if abstained else [citation],
        consulted=[Hit(rank=2, chunk=chunk, score=0.03)],
        lang=lang,  # type: ignore[arg-type]
        timings_ms={"retrieve": 12.5, "total": 20.0},
    )


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "var" / "audit.sqlite3")


def test_a_turn_is_stored_with_everything_needed_to_review_it(log: AuditLog) -> None:
    history = [Turn(role="user", content="Quels sont les leviers ?"), Turn(role="assistant", content="…")]
    turn_id = log.log_turn("session-a", make_answer(), corpus_hash="abc123", history=history, actor=ALICE)

    (record,) = log.turns()
    assert record["id"] == turn_id
    assert record["session_id"] == "session-a"
    assert record["question"] == "Quel est le septième levier ?"
    assert record["standalone_query"].endswith("(levier 7)")
    assert record["mode"] == "extractive" and record["model"] == "extractive"
    assert record["corpus_hash"] == "abc123"
    assert record["citations"][0]["quote"] == QUOTE
    assert record["consulted"][0]["chunk_id"] == "etude.txt#0018"
    assert record["abstained"] is False and record["confidence"] == pytest.approx(0.91)
    assert record["timings"] == {"retrieve": 12.5, "total": 20.0}
    assert record["history"][0] == {"role": "user", "content": "Quels sont les leviers ?"}
    assert record["rating"] is None and record["feedback"] == []


def test_the_log_is_a_real_sqlite_file_in_wal_mode(log: AuditLog) -> None:
    log.log_turn("s", make_answer(), "h", actor=ALICE)
    assert log.path.is_file()
    with sqlite3.connect(log.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM turns").fetchone()[0] == 1


def test_feedback_attaches_to_its_turn_and_the_latest_rating_counts(log: AuditLog) -> None:
    first = log.log_turn("s", make_answer("Q1 ?"), "h", actor=ALICE)
    second = log.log_turn("s", make_answer("Q2 ?"), "h", actor=ALICE)
    log.add_feedback(second, "down", "  la citation ne répond pas  ", actor=ALICE)
    log.add_feedback(second, "up", actor=ALICE)

    by_id = {r["id"]: r for r in log.turns()}
    assert by_id[first]["rating"] is None
    assert by_id[second]["rating"] == "up"
    assert by_id[second]["comment"] == "la citation ne répond pas"
    assert [f["rating"] for f in by_id[second]["feedback"]] == ["down", "up"]


def test_feedback_on_an_unknown_turn_or_with_a_bad_rating_is_refused(log: AuditLog) -> None:
    turn_id = log.log_turn("s", make_answer(), "h", actor=ALICE)
    with pytest.raises(PtceError, match="introuvable"):
        log.add_feedback(turn_id + 1, "down", actor=ALICE)
    with pytest.raises(PtceError, match="inconnu"):
        log.add_feedback(turn_id, "meh", actor=ALICE)  # type: ignore[arg-type]
    assert log.turns()[0]["feedback"] == []


def test_an_unwritable_location_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PtceError, match="PTCE_AUDIT_DB"):
        AuditLog(blocker / "audit.sqlite3")


def test_export_jsonl_and_csv_round_trip(log: AuditLog) -> None:
    turn_id = log.log_turn("s", make_answer(), "h", actor=ALICE)
    log.add_feedback(turn_id, "down", 'incomplet ; « guillemets », virgules, "quotes"', actor=ALICE)
    log.log_turn("s", make_answer("Quelle est la capitale du Japon ?", abstained=True), "h", actor=ALICE)

    out = io.StringIO()
    assert log.export("jsonl", out, actor=ALICE) == 2
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["id"] for r in rows] == [turn_id, turn_id + 1]
    assert rows[0]["rating"] == "down" and rows[0]["citations"][0]["quote"] == QUOTE
    assert rows[1]["abstained"] is True

    out = io.StringIO()
    assert log.export("csv", out, actor=ALICE) == 2
    table = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(table[0]) == list(EXPORT_FIELDS)
    assert table[0]["comment"] == 'incomplet ; « guillemets », virgules, "quotes"'
    assert json.loads(table[0]["citations"])[0]["quote"] == QUOTE
    assert table[1]["rating"] == ""


def test_export_refuses_an_unknown_format(log: AuditLog) -> None:
    with pytest.raises(PtceError, match="format"):
        log.export("xml", io.StringIO(), actor=ALICE)  # type: ignore[arg-type]


def test_down_rated_turns_become_draft_eval_cases(log: AuditLog) -> None:
    liked = log.log_turn("s", make_answer("Q aimée ?"), "h", actor=ALICE)
    log.add_feedback(liked, "up", actor=ALICE)
    disliked = log.log_turn(
        "s",
        make_answer("Q mal notée ?"),
        "h",
        history=[Turn(role="user", content="Avant ?"), Turn(role="assistant", content="…")],
        actor=ALICE,
    )
    log.add_feedback(disliked, "down", "il manque le levier 8", actor=ALICE)
    abstained = log.log_turn("s", make_answer("What is PTCE funding?", abstained=True, lang="en"), "h", actor=ALICE)
    log.add_feedback(abstained, "down", actor=ALICE)
    changed_mind = log.log_turn("s", make_answer("Q revue ?"), "h", actor=ALICE)
    log.add_feedback(changed_mind, "down", actor=ALICE)
    log.add_feedback(changed_mind, "up", actor=ALICE)
    log.log_turn("s", make_answer("Q sans avis ?"), "h", actor=ALICE)

    cases = {c.id: c for c in cases_from_feedback(log)}
    assert set(cases) == {f"feedback-{disliked}", f"feedback-{abstained}"}
    case = cases[f"feedback-{disliked}"]
    assert case.question == "Q mal notée ?" and case.answerable and case.lang == "fr"
    assert case.tags == ["from-feedback", "needs-review", "followup"]
    assert [t.content for t in case.history] == ["Avant ?", "…"]
    assert case.expected_quotes == []
    english = cases[f"feedback-{abstained}"]
    assert not english.answerable and english.lang == "en"
    assert set(english.tags) == {"from-feedback", "needs-review", "out-of-corpus", "en"}
    # The drafts are in the eval-set format: they round-trip through the strict schema.
    assert EvalCase.model_validate_json(case.model_dump_json()) == case
    assert set(json.loads(case.model_dump_json())) == {
        "id",
        "question",
        "history",
        "answerable",
        "expected_quotes",
        "tags",
        "lang",
    }


def test_eight_threads_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    per_thread = 25
    barrier = threading.Barrier(8, timeout=120)
    failures: list[BaseException] = []
    ids: list[int] = []
    lock = threading.Lock()

    def session(n: int) -> None:
        try:
            log = AuditLog(path)  # each app session opens its own handle
            barrier.wait()
            for i in range(per_thread):
                turn_id = log.log_turn(f"session-{n}", make_answer(f"Q{n}-{i} ?"), "h", actor=ALICE)
                log.add_feedback(turn_id, "down" if i % 2 else "up", f"avis {n}-{i}", actor=ALICE)
                with lock:
                    ids.append(turn_id)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            failures.append(exc)
            barrier.abort()  # never leave the other threads waiting

    threads = [threading.Thread(target=session, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not failures, failures
    records = AuditLog(path).turns()
    assert len(records) == len(set(ids)) == 8 * per_thread
    assert {r["question"] for r in records} == {f"Q{n}-{i} ?" for n in range(8) for i in range(per_thread)}
    assert all(len(r["feedback"]) == 1 and r["comment"] for r in records)


def test_a_log_opened_while_another_connection_writes_waits_for_it(tmp_path: Path) -> None:
    """SQLite refuses the switch to WAL at once, without its busy handler, while another connection
    holds a write lock in the old journal mode: the cause of a flaky CI run of the eight-thread test."""
    path = tmp_path / "audit.sqlite3"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE other (x)")
    writer.execute("BEGIN IMMEDIATE")  # a write in progress, rollback journal
    released = threading.Timer(0.3, lambda: writer.execute("COMMIT"))
    released.start()
    try:
        log = AuditLog(path, busy_timeout_s=10)
    finally:
        released.join()
        writer.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert log.turns() == []


def test_cli_exports_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ptce_assistant.cli import app
    from ptce_assistant.config import get_settings

    db = tmp_path / "audit.sqlite3"
    log = AuditLog(db)
    turn_id = log.log_turn("s", make_answer(), "h", actor=ALICE)
    log.add_feedback(turn_id, "down", "à revoir", actor=ALICE)
    monkeypatch.setenv("PTCE_AUDIT_DB", str(db))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        out = tmp_path / "export.csv"
        result = runner.invoke(app, ["audit", "export", "--format", "csv", "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert next(csv.DictReader(out.open(encoding="utf-8")))["comment"] == "à revoir"

        result = runner.invoke(app, ["audit", "export", "--format", "jsonl"])
        assert result.exit_code == 0
        assert json.loads(result.stdout.splitlines()[0])["rating"] == "down"

        result = runner.invoke(app, ["audit", "drafts"])
        assert result.exit_code == 0
        assert json.loads(result.stdout.splitlines()[0])["id"] == f"feedback-{turn_id}"

        drafts = tmp_path / "drafts.jsonl"
        result = runner.invoke(app, ["eval", "from-feedback", str(drafts)])
        assert result.exit_code == 0, result.output
        assert json.loads(drafts.read_text(encoding="utf-8").splitlines()[0])["tags"] == [
            "from-feedback",
            "needs-review",
        ]

        assert runner.invoke(app, ["audit", "export", "--format", "xml"]).exit_code == 2
    finally:
        get_settings.cache_clear()


# Who did what, and personal data ---------------------------------------------------------------------
BOB = "bob-sub"


def _age(log: AuditLog, table: str, row_id: int, days: int) -> None:
    """Backdate one row (the retention tests never wait)."""
    old = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="milliseconds")
    with sqlite3.connect(log.path) as conn:
        conn.execute(f"UPDATE {table} SET created_at = ? WHERE id = ?", (old, row_id))


def test_every_turn_feedback_and_event_records_who_did_it(log: AuditLog) -> None:
    turn_id = log.log_turn("s", make_answer(), "h", actor=ALICE)
    log.add_feedback(turn_id, "down", "à revoir", actor=ALICE)
    log.log_event(BOB, "upload", {"document": "note.txt", "bytes": 120, "status": "added"})
    log.log_event(BOB, "remove", {"document": "uploads/note.txt"})

    (turn,) = log.turns()
    assert turn["actor"] == ALICE and turn["feedback"][0]["actor"] == ALICE
    assert [(e["actor"], e["action"]) for e in log.events()] == [(BOB, "upload"), (BOB, "remove")]
    assert log.events(BOB)[0]["detail"] == {"document": "note.txt", "bytes": 120, "status": "added"}

    out = io.StringIO()
    log.export("csv", out, actor=BOB, table="events")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["action"] for r in rows] == ["upload", "remove"] and rows[0]["actor"] == BOB
    assert log.events()[-1]["action"] == "export" and log.events()[-1]["actor"] == BOB  # the export is traced


def test_a_log_written_before_actors_were_recorded_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE turns (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL,"
            " session_id TEXT NOT NULL, question TEXT NOT NULL, standalone_query TEXT NOT NULL, history TEXT NOT NULL,"
            " mode TEXT NOT NULL, model TEXT NOT NULL, corpus_hash TEXT NOT NULL, answer TEXT NOT NULL,"
            " citations TEXT NOT NULL, consulted TEXT NOT NULL, abstained INTEGER NOT NULL, confidence REAL NOT NULL,"
            " lang TEXT NOT NULL, timings TEXT NOT NULL);"
            "CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, turn_id INTEGER NOT NULL REFERENCES"
            " turns(id), created_at TEXT NOT NULL, rating TEXT NOT NULL, comment TEXT);"
            "INSERT INTO turns VALUES (1, '2026-11-30T10:00:00.000+00:00', 's', 'Q ?', 'Q ?', '[]', 'extractive',"
            " 'extractive', 'h', 'R', '[]', '[]', 0, 0.5, 'fr', '{}');"
        )
    log = AuditLog(path)
    log.log_turn("s", make_answer(), "h", actor=ALICE)
    assert [t["actor"] for t in log.turns()] == [UNKNOWN_ACTOR, ALICE]


def test_purging_one_person_erases_their_entries_and_nothing_else(log: AuditLog) -> None:
    secret_question = "Mon voisin Jean Dupont, 12 rue des Lilas, peut-il créer un PTCE ?"
    mine = log.log_turn("s", make_answer(secret_question), "h", actor=ALICE)
    log.add_feedback(mine, "up", "merci", actor=ALICE)
    log.log_event(ALICE, "upload", {"document": "alice.txt", "bytes": 10, "status": "added"})
    theirs = log.log_turn("s", make_answer("Q de Bob ?"), "h", actor=BOB)
    log.add_feedback(theirs, "down", actor=BOB)

    with closing(sqlite3.connect(log.path)) as other:  # another session reads the log: the WAL file stays
        other.execute("SELECT count(*) FROM turns").fetchone()
        purged = log.purge_user(ALICE, actor="os:admin")
        raw = b"".join(p.read_bytes() for p in log.path.parent.glob("audit.sqlite3*"))
    assert secret_question.encode() not in raw  # overwritten, not left in free pages or the WAL
    assert (purged.turns, purged.feedback, purged.events) == (1, 1, 1)
    assert [t["actor"] for t in log.turns()] == [BOB] and log.turns()[0]["rating"] == "down"
    assert log.turns(ALICE) == [] and log.events(ALICE) == []
    (trace,) = log.events()
    assert trace["actor"] == "os:admin" and trace["action"] == "purge"
    assert ALICE not in json.dumps(trace)  # the trace says an erasure happened, not whose


def test_entries_past_the_retention_period_are_purged_automatically(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    log = AuditLog(path)
    old = log.log_turn("s", make_answer("Vieille question ?"), "h", actor=ALICE)
    log.add_feedback(old, "down", actor=ALICE)
    _age(log, "turns", old, days=200)
    recent = log.log_turn("s", make_answer("Question récente ?"), "h", actor=ALICE)
    event = log.log_event(BOB, "remove", {"document": "x.txt"})
    _age(log, "events", event, days=181)

    reopened = AuditLog(path, retention_days=180)  # what the app and the CLI do at start
    assert [t["id"] for t in reopened.turns()] == [recent]
    (trace,) = reopened.events()
    assert (trace["actor"], trace["action"], trace["detail"]) == (
        SYSTEM_ACTOR,
        "purge",
        {"older_than_days": 180, "rows": 3},
    )
    assert len(AuditLog(path, retention_days=0).turns()) == 1  # 0 keeps everything


def test_cli_gives_one_person_their_entries_and_erases_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ptce_assistant.cli import app
    from ptce_assistant.config import get_settings

    db = tmp_path / "audit.sqlite3"
    log = AuditLog(db)
    log.log_turn("s", make_answer("Q d'Alice ?"), "h", actor=ALICE)
    log.log_turn("s", make_answer("Q de Bob ?"), "h", actor=BOB)
    log.log_event(ALICE, "upload", {"document": "a.txt", "bytes": 3, "status": "added"})
    monkeypatch.setenv("PTCE_AUDIT_DB", str(db))
    get_settings.cache_clear()
    operator = f"os:{getpass.getuser()}"
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["audit", "export", "--user", ALICE])
        assert result.exit_code == 0, result.output
        assert [json.loads(line)["question"] for line in result.stdout.splitlines()] == ["Q d'Alice ?"]
        result = runner.invoke(app, ["audit", "export", "--user", ALICE, "--events"])
        assert [json.loads(line)["action"] for line in result.stdout.splitlines()] == ["upload"]
        exports = [e for e in log.events() if e["action"] == "export"]
        assert [(e["actor"], e["detail"]["one_person"]) for e in exports] == [(operator, True)] * 2

        result = runner.invoke(app, ["audit", "purge", "--user", ALICE])
        assert result.exit_code == 0, result.output
        assert "1 tour(s), 0 avis et 1 événement(s) de cette personne effacés" in result.output
        assert [t["actor"] for t in log.turns()] == [BOB]
        assert log.events()[-1]["actor"] == operator and log.events()[-1]["action"] == "purge"

        monkeypatch.setenv("PTCE_AUDIT_RETENTION_DAYS", "0")
        get_settings.cache_clear()
        assert runner.invoke(app, ["audit", "purge"]).exit_code == 2  # nothing is past an unlimited retention
    finally:
        get_settings.cache_clear()
