"""benchmarks/retrieval_variants.py: its in-memory ranking equals the product's, and HyDE feeds the dense query."""

from __future__ import annotations

import pytest
from retrieval_variants import HYDE_VARIANTS, VARIANTS, Ranker

from ptce_assistant.assistant import Assistant
from ptce_assistant.config import PROJECT_ROOT
from ptce_assistant.evals.dataset import load_cases


@pytest.fixture(scope="module")
def questions() -> list[str]:
    cases = load_cases(PROJECT_ROOT / "evals" / "dev.jsonl")
    return [case.question for case in cases if case.answerable and not case.history][:8]


def test_the_reimplemented_ranking_equals_the_shipped_one(assistant: Assistant, questions: list[str]) -> None:
    ranker = Ranker(assistant)
    reimplemented = next(v for v in VARIANTS if v.name == "reimplemented")
    for question in questions:
        query, result = assistant.retrieve(question, k=5)
        assert ranker.rank(reimplemented, query.text)[:5] == [h.chunk.chunk_id for h in result.hits]


def test_hyde_adds_the_hypothetical_passage_to_the_dense_query(assistant: Assistant, questions: list[str]) -> None:
    asked: list[str] = []

    def hypothetical(query: str) -> str:
        asked.append(query)
        return "Les collectivités financent l'animation du pôle et mettent des locaux à disposition."

    ranker = Ranker(assistant, hypothetical)
    hyde = HYDE_VARIANTS[0]
    ranking = ranker.rank(hyde, questions[0])
    assert asked == [questions[0]]
    assert sorted(ranking) == sorted(c.chunk_id for c in assistant.index.chunks)  # a ranking of every chunk
    with pytest.raises(AssertionError, match="--hyde"):
        Ranker(assistant).rank(hyde, questions[0])
