"""Where to go next: follow-ups drawn from the corpus's outline, on real answers over the bundled study."""

from __future__ import annotations

import pytest

from ptce_assistant.assistant import Assistant
from ptce_assistant.followups import gist
from ptce_assistant.levers import find_levers
from ptce_assistant.lexical import detect_language

QUESTIONS = (
    "Quels sont les huit leviers identifiés par l'étude ?",
    "Quel est le rôle des collectivités dans l'émergence des PTCE ?",
    "Quelles sont les spécificités des PTCE en milieu rural ?",
    "Que dit le levier 4 sur 8 ?",
    "Quelle est la capitale du Japon ?",
)


@pytest.mark.parametrize("question", QUESTIONS)
def test_suggestions_name_real_parts_of_the_corpus_and_never_repeat(assistant: Assistant, question: str) -> None:
    answer = assistant.ask(question)
    suggestions = assistant.follow_ups(answer)
    assert 2 <= len(suggestions) <= 3
    crumbs = {tuple(c.breadcrumb) for c in assistant.index.chunks}
    cited = {
        (tuple(assistant.index.by_id[c.chunk_id].breadcrumb), assistant.index.by_id[c.chunk_id].list_position)
        for c in answer.citations
    }
    for suggestion in suggestions:
        assert suggestion.breadcrumb in crumbs  # a real section of the study
        assert suggestion.question != answer.question
        if suggestion.kind == "section":
            assert f"« {suggestion.section} »" in suggestion.question
        else:
            assert (suggestion.breadcrumb, suggestion.position) not in cited  # not what the answer already quotes
    assert len({s.question for s in suggestions}) == len(suggestions)


def test_a_lever_leads_to_its_neighbours_and_asking_one_lands_on_it(assistant: Assistant) -> None:
    levers = find_levers(assistant.index.chunks)
    answer = assistant.ask("Que dit le levier 4 sur 8 ?")
    suggestions = assistant.follow_ups(answer)
    neighbours = [s for s in suggestions if s.kind == "lever"]
    assert [s.position for s in neighbours] == [5, 3]
    for suggestion in neighbours:
        assert suggestion.position is not None
        lever = levers[suggestion.position - 1]
        assert f"levier {lever.position} sur 8" in suggestion.question
        assert gist(lever.text).rstrip("…") in lever.text and gist(lever.text) in suggestion.question
        followed = assistant.ask(suggestion.question)
        assert not followed.abstained
        assert followed.citations[0].chunk_id in lever.chunk_ids  # one click leads to that very lever


def test_other_points_of_a_cited_list_come_first(assistant: Assistant) -> None:
    answer = assistant.ask("Quel est le rôle des collectivités dans l'émergence des PTCE ?")
    first = assistant.follow_ups(answer)[0]
    assert first.kind == "point" and first.section == "Rôle des collectivités" and first.position == 2
    followed = assistant.ask(first.question)
    chunk = assistant.index.by_id[followed.citations[0].chunk_id]
    assert (chunk.heading, chunk.list_position) == ("Rôle des collectivités", 2)


def test_a_whole_list_answer_moves_on_to_the_other_sections(assistant: Assistant) -> None:
    answer = assistant.ask("Quels sont les huit leviers identifiés par l'étude ?")
    suggestions = assistant.follow_ups(answer)
    assert {s.kind for s in suggestions} == {"section"}
    assert all("leviers" not in s.section for s in suggestions)


def test_english_answers_get_english_suggestions(assistant: Assistant) -> None:
    answer = assistant.ask("What does lever 4 of 8 say?")
    assert answer.lang == "en"
    suggestions = assistant.follow_ups(answer)
    assert suggestions and all(detect_language(s.question) == "en" for s in suggestions)
    assert "What does lever 5 of 8 say?" in [s.question for s in suggestions]


def test_questions_already_asked_are_not_suggested_again(assistant: Assistant) -> None:
    answer = assistant.ask("Que dit le levier 4 sur 8 ?")
    first, *rest = assistant.follow_ups(answer)
    again = assistant.follow_ups(answer, asked=[first.question.upper()])
    assert first.question not in [s.question for s in again]
    assert [s.question for s in again][: len(rest)] == [s.question for s in rest]


def test_gist_cuts_on_a_clause_or_a_word() -> None:
    assert gist("Faire oeuvre de pédagogie sur l'ESS, présenter et diffuser ses valeurs") == (
        "Faire oeuvre de pédagogie sur l'ESS"
    )
    long = "Soutenir l'emploi et les fonctions de coordination et de recherche et développement des projets"
    cut = gist(long)
    assert cut.endswith("…") and long.startswith(cut[:-1]) and len(cut) <= 61
