"""Concurrent users on one Assistant (bounded: 4 threads x 5 questions): no failure, no answer mixed up.

Reuses the load test of benchmarks/load.py; no timing is asserted.
"""

from __future__ import annotations

import threading
from typing import cast

from load import questions_per_user, run_load

from ptce_assistant.answering.answer import Answer
from ptce_assistant.assistant import Assistant

USERS, QUESTIONS = 4, 5


def test_concurrent_users_each_get_the_answers_to_their_own_questions(assistant: Assistant) -> None:
    questions = questions_per_user(USERS, per_user=QUESTIONS)
    assert len({q for own in questions for q in own}) == USERS * QUESTIONS  # nobody shares a question
    report = run_load(assistant, questions, seconds=600, max_requests=QUESTIONS)
    assert report.failures == []
    assert report.mixed == []
    assert report.requests == USERS * QUESTIONS


class CrossedWires:
    """After its first `honest` answers, answers the next question of the pool instead of the one asked."""

    def __init__(self, inner: Assistant, pool: list[str], honest: int) -> None:
        self.inner, self.pool, self.honest = inner, pool, honest
        self.lock = threading.Lock()

    def ask(self, question: str) -> Answer:
        with self.lock:
            self.honest -= 1
            crossed = self.honest < 0
        asked = self.pool[(self.pool.index(question) + 1) % len(self.pool)] if crossed else question
        return self.inner.ask(asked)


def test_the_load_test_catches_an_answer_given_to_the_wrong_user(assistant: Assistant) -> None:
    questions = questions_per_user(2, per_user=2)
    pool = [q for own in questions for q in own]
    crossed = CrossedWires(assistant, pool, honest=len(pool))  # the single-user references stay honest
    report = run_load(cast(Assistant, crossed), questions, seconds=600, max_requests=2)
    assert report.failures == []
    assert len(report.mixed) == report.requests == 4
