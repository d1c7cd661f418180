"""Hybrid search: both retrievers' ranks reported, fused by reciprocal rank."""

from __future__ import annotations

import pytest

from ptce_assistant import retrieval
from ptce_assistant.assistant import Assistant
from ptce_assistant.retrieval import expanded_query, reciprocal_rank_fusion


def test_rrf_rewards_agreement() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "c", "a"]], k=60)
    assert [item for item, _ in fused] == ["b", "a", "c"]
    assert fused[0][1] == 1 / 61 + 1 / 62


def test_rrf_keeps_items_found_by_one_retriever_only() -> None:
    fused = dict(reciprocal_rank_fusion([["a"], ["z"]], k=10))
    assert fused == {"a": 1 / 11, "z": 1 / 11}


def test_search_reports_dense_and_lexical_ranks(assistant: Assistant) -> None:
    result = assistant.search("soutenir l'emploi et la coordination dans le long terme", k=5)
    top = result.hits[0]
    assert top.chunk.text.startswith("Soutenir l'emploi")
    assert top.dense_rank is not None and top.lexical_rank is not None
    assert [h.rank for h in result.hits] == [1, 2, 3, 4, 5]
    assert {"expand", "embed", "dense", "bm25", "fusion", "search"} <= set(result.timings_ms)


def test_paraphrase_in_everyday_words_finds_the_property_lever(assistant: Assistant) -> None:
    hits = assistant.search("La mairie peut-elle prêter des locaux à un pôle de coopération ?", k=3).hits
    assert any("immobilière et foncière" in h.chunk.text or "immobilier ou foncier" in h.chunk.text for h in hits)


def test_breadcrumb_is_indexed_lexically(assistant: Assistant) -> None:
    # "leviers" only appears in the heading of the list, never in the levers' own text.
    hits = assistant.index.lexical.search("leviers", 20)
    ids = {cid for cid, _ in hits}
    levers = {c.chunk_id for c in assistant.index.chunks if c.list_length == 8}
    assert levers <= ids


def test_the_thesaurus_setting_turns_query_expansion_off() -> None:
    assert "collectivités" in expanded_query("Que fait la mairie ?")
    assert expanded_query("Que fait la mairie ?", thesaurus=False) == "Que fait la mairie ?"


def test_an_assistant_without_thesaurus_never_expands_and_shares_the_loaded_index(
    assistant: Assistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    expanded: list[str] = []
    monkeypatch.setattr(retrieval, "expansions", lambda query: expanded.append(query) or "")
    off = assistant.with_settings(thesaurus=False)
    assert off.index is assistant.index and off.embedder is assistant.embedder and not off.settings.thesaurus
    off.ask("Comment une mairie peut-elle aider un PTCE à trouver des locaux ?")
    assert expanded == []
    assistant.searcher.search("Comment une mairie peut-elle aider un PTCE à trouver des locaux ?")
    assert expanded  # the same search with the thesaurus on does expand


def test_an_answer_expands_its_question_once_and_searches_with_that_expansion(
    assistant: Assistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    question = "Comment une mairie peut-elle aider un PTCE à trouver des locaux ?"
    expanded: list[str] = []
    monkeypatch.setattr(retrieval, "expansions", lambda query: expanded.append(query) or "collectivités")
    searched: list[str | None] = []
    search = assistant.searcher.search
    monkeypatch.setattr(assistant.searcher, "search", lambda q, k=None, e=None: searched.append(e) or search(q, k, e))
    findings = assistant.examine(question)
    assert expanded == [question]  # analysed once, not again by the search
    assert searched == [findings.question.expanded] == [f"{question} collectivités"]
