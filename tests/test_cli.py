"""The `ptce` command line: exit codes, JSON formats, batch files, errors without tracebacks."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ptce_assistant.audit import AuditLog
from ptce_assistant.cli import app
from ptce_assistant.config import get_settings

runner = CliRunner()
HIT_KEYS = {
    "rank",
    "chunk_id",
    "doc_id",
    "title",
    "breadcrumb",
    "text",
    "page",
    "page_label",
    "start",
    "end",
    "score",
    "dense_rank",
    "lexical_rank",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, corpus_copy: Path, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("PTCE_CORPUS_DIR", str(corpus_copy))
    monkeypatch.setenv("PTCE_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("PTCE_AUDIT_DB", str(tmp_path / "audit.sqlite3"))
    get_settings.cache_clear()
    yield corpus_copy
    get_settings.cache_clear()


def test_ingest_search_ask_round_trip(env: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 0, result.output
    assert "added" in result.output and "20 passages" in result.output
    (trace,) = AuditLog(tmp_path / "audit.sqlite3").events()  # a corpus change, traced to the OS user
    assert (trace["actor"], trace["action"]) == (f"os:{getpass.getuser()}", "ingest")
    assert trace["detail"] == {"rebuild": False, "changed": 1, "rejected": 0, "chunks": 20}

    result = runner.invoke(app, ["search", "soutenir l'emploi de coordination", "--json", "--k", "3"])
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert len(payload["hits"]) == 3 and set(payload["hits"][0]) == HIT_KEYS
    assert payload["hits"][0]["text"].startswith("Soutenir l'emploi")

    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        json.dumps({"id": "a", "question": "Quels sont les huit leviers ?"})
        + "\n\n"
        + json.dumps(
            {
                "id": "b",
                "question": "Et le septième ?",
                "history": [
                    {"role": "user", "content": "Quels sont les huit leviers ?"},
                    {"role": "assistant", "content": "…"},
                ],
            }
        )
        + "\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["search", "--batch", str(cases), "--k", "2"])
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines] == ["a", "b"]
    assert set(lines[0]) >= {"id", "hits", "timings_ms"}
    assert lines[1]["hits"][0]["text"].startswith("Soutenir l'emploi")

    result = runner.invoke(app, ["ask", "Quel est le budget annuel moyen d'un PTCE ?", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["abstained"] is True

    result = runner.invoke(app, ["ask", "--batch", str(cases)])
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["id"] for a in answers] == ["a", "b"] and len(answers[0]["citations"]) == 8


def test_rejected_file_exits_1_and_names_it(env: Path) -> None:
    (env / "casse.pdf").write_bytes(b"%PDF-1.7 not really")
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 1
    assert "casse.pdf" in result.output and "PDF illisible" in result.output
    assert "Traceback" not in result.output


def test_usage_errors_exit_2(env: Path) -> None:
    assert runner.invoke(app, ["search"]).exit_code == 2
    assert runner.invoke(app, ["ask", "x", "--mode", "poetic"]).exit_code == 2
    assert runner.invoke(app, ["chat", "--llm", "elsewhere"], input="").exit_code == 2  # checked before loading
    assert runner.invoke(app, ["search", "x", "--k", "0"]).exit_code == 2


def test_search_without_index_says_what_to_do(env: Path) -> None:
    result = runner.invoke(app, ["search", "leviers"])
    assert result.exit_code == 1
    assert "ptce ingest" in result.output and "Traceback" not in result.output


def test_bad_batch_line_is_reported_with_its_number(env: Path, tmp_path: Path) -> None:
    runner.invoke(app, ["ingest"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "ok", "question": "leviers"}\n{not json\n', encoding="utf-8")
    result = runner.invoke(app, ["search", "--batch", str(bad)])
    assert result.exit_code == 1
    assert "bad.jsonl:2" in result.output


def test_doctor_reports_each_check(env: Path) -> None:
    runner.invoke(app, ["ingest"])
    result = runner.invoke(app, ["doctor"])
    assert "modèle d'embedding" in result.output and "index" in result.output
    assert result.exit_code == 0, result.output


def test_file_names_with_markup_or_control_characters_are_printed_as_text(env: Path) -> None:
    (env / "[bold]piège[x].txt").write_bytes(b"")
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 1
    assert "[bold]pièg" in result.output and "Traceback" not in result.output
