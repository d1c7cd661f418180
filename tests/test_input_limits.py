"""The facade's input limits: question length, history length, the environment variables that set them."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import make_settings
from ptce_assistant.assistant import Assistant
from ptce_assistant.chunking import Chunk
from ptce_assistant.conversation import Turn
from ptce_assistant.errors import InputLimitError


def test_question_limit_is_exact_and_says_what_to_do(assistant: Assistant) -> None:
    limit = assistant.settings.max_question_chars
    question = "Quel rôle jouent les collectivités ?"
    assistant.ask("  " + question.ljust(limit, "?") + "  \n")  # surrounding blanks do not count
    with pytest.raises(InputLimitError) as caught:
        assistant.ask(question.ljust(limit + 1, "?"))
    assert str(caught.value) == f"question trop longue ({limit + 1} caractères, limite {limit}) : raccourcissez-la"


def test_only_the_last_history_turns_are_used(assistant: Assistant, monkeypatch: pytest.MonkeyPatch) -> None:
    import ptce_assistant.assistant as facade
    from ptce_assistant.conversation import StandaloneQuery, standalone_query

    seen: list[list[Turn]] = []

    def spy(question: str, history: list[Turn], chunks: list[Chunk]) -> StandaloneQuery:
        seen.append(list(history))
        return standalone_query(question, history, chunks)

    monkeypatch.setattr(facade, "standalone_query", spy)
    history = [Turn(role="user" if i % 2 == 0 else "assistant", content=f"tour {i}") for i in range(5000)]
    assistant.ask("Quel rôle jouent les collectivités ?", history)
    assert seen == [history[-assistant.settings.max_history_turns :]]


def test_a_huge_history_turn_is_refused_or_trimmed(assistant: Assistant) -> None:
    history = [Turn(role="user", content="Le rôle des collectivités " * 10_000), Turn(role="assistant", content="…")]
    try:
        answer = assistant.ask("Et pourquoi ?", history)
    except InputLimitError:
        return
    assert len(answer.standalone_query) <= 2 * assistant.settings.max_question_chars


def test_environment_variables_set_the_limits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in {"MAX_QUESTION_CHARS": "50", "MAX_HISTORY_TURNS": "4", "MAX_UPLOAD_MB": "3"}.items():
        monkeypatch.setenv(f"PTCE_{name}", value)
    settings = make_settings(tmp_path)
    assert (settings.max_question_chars, settings.max_history_turns, settings.max_upload_mb) == (50, 4, 3)
