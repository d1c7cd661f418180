"""The written mode against a real OpenAI-compatible server: llama.cpp's own, over the bundled GGUF.

Through the Assistant facade and `ptce ask --llm openai`: streaming, verification, the model name,
a wrong key, a server killed mid-stream, a slow server, four users at once. Generations are kept few
and short (PTCE_LLM_MAX_TOKENS) because the model runs on the CI machine's two cores.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import LlmServer, make_settings
from ptce_assistant.answering.answer import Answer
from ptce_assistant.assistant import Assistant, StreamEvent, citation_is_valid
from ptce_assistant.audit import AuditLog
from ptce_assistant.config import Settings
from ptce_assistant.llm_server import SERVED_MODEL, served_models

pytestmark = [pytest.mark.llm, pytest.mark.server]

MAX_TOKENS = 40
QUESTION = "Quel est le rôle des collectivités dans l'émergence des PTCE ?"


def served_settings(assistant: Assistant, server: LlmServer, **overrides: object) -> Settings:
    """The session index, the written mode through `server` (its key unless overridden)."""
    values: dict[str, object] = {
        "mode": "generative",
        "llm": "openai",
        "openai_base_url": server.base_url,
        "openai_model": SERVED_MODEL,
        "openai_api_key": server.api_key,
        "llm_max_tokens": MAX_TOKENS,
        **overrides,
    }
    return make_settings(assistant.settings.index_dir.parent, **values)


def events_of(helper: Assistant, question: str) -> list[StreamEvent]:
    return list(helper.stream(question))


def final_of(events: list[StreamEvent]) -> Answer:
    answer = events[-1].answer
    assert events[-1].kind == "final" and answer is not None
    return answer


def draft_of(events: list[StreamEvent]) -> Answer:
    draft = next(e.answer for e in events if e.kind == "draft")
    assert draft is not None
    return draft


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `ptce` subprocess reading `settings`' index and server."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    return {
        **os.environ,
        "PTCE_CORPUS_DIR": str(settings.corpus_dir),
        "PTCE_INDEX_DIR": str(settings.index_dir),
        "PTCE_AUDIT_DB": str(settings.audit_db),
        "PTCE_OPENAI_BASE_URL": str(settings.openai_base_url),
        "PTCE_OPENAI_MODEL": settings.openai_model,
        "PTCE_OPENAI_API_KEY": key,
        "PTCE_LLM_MAX_TOKENS": str(settings.llm_max_tokens),
        **extra,
    }


def ptce(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ptce_assistant.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_written_answer_streams_over_http_verified_with_the_servers_model_name(
    assistant: Assistant, llm_server: LlmServer, tmp_path: Path
) -> None:
    helper = Assistant(served_settings(assistant, llm_server))
    events = events_of(helper, QUESTION)
    tokens = [e.text for e in events if e.kind == "token"]
    answer = final_of(events)
    assert len(tokens) > 1, "the server's answer came in one piece, not streamed"
    assert answer.notice is None
    assert answer.mode == "generative"
    assert answer.verification is not None  # the lead was checked sentence by sentence against the quotes
    assert answer.answer.endswith(draft_of(events).answer)  # the verified quotes stay, under any lead
    assert answer.citations and all(citation_is_valid(c, helper.index) for c in answer.citations)
    # The name the server itself lists and reports, carried into the answer and the audit log.
    assert answer.model in served_models(helper.settings).models
    log = AuditLog(tmp_path / "audit.sqlite3")
    turn = log.log_turn("s1", answer, helper.index.manifest.corpus_hash, actor="local")
    with sqlite3.connect(tmp_path / "audit.sqlite3") as conn:
        assert conn.execute("SELECT model FROM turns WHERE id = ?", (turn,)).fetchone() == (answer.model,)
        assert llm_server.api_key not in "\n".join(conn.iterdump())
    assert 'POST /v1/chat/completions HTTP/1.1" 200' in llm_server.log.read_text(errors="replace")


def test_ptce_ask_streams_through_the_server(assistant: Assistant, llm_server: LlmServer, tmp_path: Path) -> None:
    settings = served_settings(assistant, llm_server)
    result = ptce("ask", "--mode", "generative", "--llm", "openai", QUESTION, env=cli_env(settings), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Réponse rédigée par le modèle" in result.stdout and "Après vérification" in result.stdout
    assert "LLM en erreur" not in result.stderr and "Traceback" not in result.stderr
    assert "[1]" in result.stdout


def test_wrong_key_names_the_setting_and_gives_the_extractive_answer(
    assistant: Assistant, llm_server: LlmServer, tmp_path: Path
) -> None:
    wrong = "wrong-key-0123456789"
    helper = Assistant(served_settings(assistant, llm_server, openai_api_key=wrong))
    events = events_of(helper, QUESTION)
    answer = final_of(events)
    assert answer.notice is not None and "PTCE_OPENAI_API_KEY" in answer.notice and "401" in answer.notice
    assert wrong not in answer.notice
    assert answer.mode == "extractive" and answer.answer == draft_of(events).answer
    assert all(citation_is_valid(c, helper.index) for c in answer.citations)

    result = ptce(
        "ask", "--mode", "generative", "--llm", "openai", QUESTION, env=cli_env(helper.settings), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "PTCE_OPENAI_API_KEY" in result.stderr and "Traceback" not in result.stderr + result.stdout
    assert wrong not in result.stderr + result.stdout
    assert "[1]" in result.stdout  # the extractive answer and its sources


def test_server_killed_mid_stream_then_back(assistant: Assistant, llm_server: LlmServer) -> None:
    helper = Assistant(served_settings(assistant, llm_server, llm_max_tokens=200))
    events: list[StreamEvent] = []
    try:
        for event in helper.stream("Quels équipements les PTCE mutualisent-ils ?"):
            events.append(event)
            if event.kind == "token" and sum(e.kind == "token" for e in events) == 2:
                llm_server.kill()
    finally:
        llm_server.start()  # back for the next question and the other tests
    answer = final_of(events)
    assert llm_server.process is not None
    assert any(e.kind == "token" for e in events), "the server died before streaming"
    assert answer.notice is not None and "coupée" in answer.notice, answer.notice
    assert answer.mode == "extractive" and answer.answer == draft_of(events).answer
    assert all(citation_is_valid(c, helper.index) for c in answer.citations)

    helper.settings.llm_max_tokens = MAX_TOKENS
    again = final_of(events_of(helper, "Quels équipements les PTCE mutualisent-ils ?"))
    assert again.notice is None and again.mode == "generative", again.notice


def test_server_slower_than_the_timeout(assistant: Assistant, llm_server: LlmServer) -> None:
    # Reading the passages of a new question takes the model seconds: far more than a 0.5 s timeout.
    helper = Assistant(served_settings(assistant, llm_server, openai_timeout=0.5))
    started = time.perf_counter()
    events = events_of(helper, "Comment les PTCE sont-ils financés ?")
    elapsed = time.perf_counter() - started
    answer = final_of(events)
    assert answer.notice is not None and "PTCE_OPENAI_TIMEOUT" in answer.notice, answer.notice
    assert answer.mode == "extractive" and answer.answer == draft_of(events).answer
    print(f"\nslow server: extractive answer with the notice after {elapsed:.1f} s (timeout 0.5 s)")


def test_four_users_at_once_through_one_server(assistant: Assistant, llm_server: LlmServer) -> None:
    helper = Assistant(served_settings(assistant, llm_server))
    questions = [
        "Quel est le rôle des collectivités dans l'émergence des PTCE ?",
        "Quelles sont les spécificités des PTCE en milieu rural ?",
        "Qui a publié l'étude et quand ?",
        "Pourquoi le rôle des collectivités est-il délicat ?",
    ]
    results: dict[str, list[StreamEvent]] = {}
    failures: list[BaseException] = []

    def user(question: str) -> None:
        try:
            results[question] = events_of(helper, question)
        except BaseException as exc:  # reported below, with the question
            failures.append(exc)

    threads = [threading.Thread(target=user, args=(q,)) for q in questions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not failures, failures
    assert set(results) == set(questions)
    extractive = {q: helper.ask(q, mode="extractive") for q in questions}
    for question, events in results.items():
        answer, draft = final_of(events), draft_of(events)
        assert answer.question == question and answer.notice is None, answer.notice
        assert answer.mode == "generative" and answer.verification is not None
        # Each user's answer is built on their own quotes: the same as that question's extractive answer.
        assert draft.answer == extractive[question].answer
        assert answer.answer.endswith(draft.answer)
        assert [c.chunk_id for c in answer.citations[: len(draft.citations)]] == [c.chunk_id for c in draft.citations]
        assert all(citation_is_valid(c, helper.index) for c in answer.citations)
        assert "".join(e.text for e in events if e.kind == "token").strip()


def test_doctor_lists_the_servers_models_and_names_the_setting(
    assistant: Assistant, llm_server: LlmServer, tmp_path: Path
) -> None:
    env = cli_env(served_settings(assistant, llm_server))
    listed = ptce("doctor", env=env, cwd=tmp_path)
    assert f"modèles du serveur LLM: {llm_server.base_url}/ : {SERVED_MODEL}" in " ".join(listed.stdout.split())
    absent = ptce("doctor", env={**env, "PTCE_OPENAI_MODEL": "gpt-4o-mini"}, cwd=tmp_path)
    shown = " ".join(absent.stdout.split())
    assert "PTCE_OPENAI_MODEL vaut « gpt-4o-mini », absent de" in shown and SERVED_MODEL in shown
    refused = ptce("doctor", env={**env, "PTCE_OPENAI_API_KEY": "not-the-key-42"}, cwd=tmp_path)
    assert "PTCE_OPENAI_API_KEY" in refused.stdout
    for result in (listed, absent, refused):
        assert llm_server.api_key not in result.stdout + result.stderr
        assert "not-the-key-42" not in result.stdout + result.stderr


def test_the_key_stays_out_of_eval_reports_and_the_audit_log(
    assistant: Assistant, llm_server: LlmServer, tmp_path: Path
) -> None:
    """An eval run in the written mode through the server, then every file it wrote searched for the key."""
    import json

    from ptce_assistant.evals.report import write_reports
    from ptce_assistant.evals.runner import run_eval

    cases = tmp_path / "one.jsonl"
    case = {"id": "k1", "question": QUESTION, "answerable": True, "lang": "fr", "tags": ["served"]}
    cases.write_text(json.dumps(case, ensure_ascii=False) + "\n", encoding="utf-8")
    # A refused key costs no generation and is as secret as the right one: neither may be written anywhere.
    helper = Assistant(served_settings(assistant, llm_server, openai_api_key="refused-key-0987654321"))
    report = run_eval(helper, [cases], mode="generative", llm="openai", with_baselines=False)
    written = write_reports(report, tmp_path / "report")
    notice = report.cases[0].answer.notice
    assert notice and "PTCE_OPENAI_API_KEY" in notice, notice
    for path in written:
        assert b"refused-key-0987654321" not in path.read_bytes(), path
    log = AuditLog(tmp_path / "audit.sqlite3")
    log.log_turn("s1", helper.ask(QUESTION), helper.index.manifest.corpus_hash, actor="local")
    assert b"refused-key-0987654321" not in (tmp_path / "audit.sqlite3").read_bytes()


def test_the_server_reads_its_port_and_key_from_us_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """honcho exports PORT=5000, 5100...: llama.cpp's server would take it over --port (seen in `make stack`)."""
    from ptce_assistant.llm_server import server_command, server_environment

    monkeypatch.setenv("PORT", "5100")
    monkeypatch.setenv("N_CTX", "16")
    monkeypatch.setenv("API_KEY", "inherited")
    settings = make_settings(tmp_path, openai_api_key="configured-key-123")
    env = server_environment(settings)
    assert "PORT" not in env and "N_CTX" not in env and env["API_KEY"] == "configured-key-123"
    command = server_command(settings, "127.0.0.1", 8123)
    assert command[command.index("--port") + 1] == "8123" and "configured-key-123" not in " ".join(command)
