"""Follow-ups resolved without an LLM: ordinals onto recorded list items, ellipses onto the last question."""

from __future__ import annotations

from ptce_assistant.assistant import Assistant
from ptce_assistant.conversation import Turn, is_followup, ordinal_in, standalone_query

LEVERS_Q = Turn(role="user", content="Quels sont les huit leviers identifiés par l'étude ?")
LEVERS_A = Turn(role="assistant", content="D'après l'étude : 1. Faire oeuvre de pédagogie… [1]")


def test_ordinals_in_french_and_english() -> None:
    assert ordinal_in("Et le septième ?") == 7
    assert ordinal_in("Peux-tu détailler le 4e levier ?") == 4
    assert ordinal_in("levier 3") == 3
    assert ordinal_in("What about the sixth one?") == 6
    assert ordinal_in("Et le dernier ?") == -1
    assert ordinal_in("Quels sont les leviers ?") is None
    assert ordinal_in("and what about the last of the eight levers?") == -1
    assert ordinal_in("Et le troisième, il consiste en quoi ?") == 3


def test_an_ordinal_of_another_noun_points_at_no_list() -> None:
    """ "The first national call" is not the first item of a list (blind4-062), nor "will PTCEs last" (heldout-012)."""
    assert ordinal_in("Which minister launched the first national call for PTCE projects?") is None
    assert ordinal_in("Can the study tell whether PTCEs will last over time?") is None
    assert ordinal_in("Quelle a été la première subvention versée ?") is None


def test_followup_detection() -> None:
    assert is_followup("Et le septième ?")
    assert is_followup("Quels exemples y trouve-t-on ?")
    assert not is_followup("Quel rôle jouent les collectivités dans l'émergence des PTCE ?")


def test_seventh_maps_onto_the_seventh_lever(assistant: Assistant) -> None:
    query = standalone_query("Et le septième ?", [LEVERS_Q, LEVERS_A], assistant.index.chunks)
    assert query.list_item is not None
    assert query.list_item.position == 7 and query.list_item.length == 8
    assert "leviers" in query.list_item.breadcrumb[-1]
    assert "Soutenir l'emploi" in query.text


def test_last_means_the_list_length(assistant: Assistant) -> None:
    query = standalone_query("Et le dernier ?", [LEVERS_Q, LEVERS_A], assistant.index.chunks)
    assert query.list_item is not None and query.list_item.position == 8


def _position(question: str, history: list[Turn], assistant: Assistant) -> int | None:
    query = standalone_query(question, history, assistant.index.chunks)
    return query.list_item.position if query.list_item else None


def test_next_and_previous_step_from_the_item_of_the_conversation(assistant: Assistant) -> None:
    third = [LEVERS_Q, LEVERS_A, Turn(role="user", content="Et le troisième ?"), LEVERS_A]
    assert _position("Et le suivant ?", third, assistant) == 4
    assert _position("Et le précédent ?", third, assistant) == 2
    assert _position("And the next one?", third, assistant) == 4
    # Steps chain turn after turn: third, then next (4), then next again (5).
    chained = [*third, Turn(role="user", content="Et le suivant ?"), LEVERS_A]
    assert _position("Et le suivant ?", chained, assistant) == 5
    assert "Inscrire les PTCE" not in standalone_query("Et le suivant ?", chained, assistant.index.chunks).text


def test_steps_stay_inside_the_list(assistant: Assistant) -> None:
    last = [LEVERS_Q, LEVERS_A, Turn(role="user", content="Et le dernier ?"), LEVERS_A]
    assert _position("Et le précédent ?", last, assistant) == 7
    assert _position("Et le suivant ?", last, assistant) is None  # nothing after the eighth
    first = [LEVERS_Q, LEVERS_A, Turn(role="user", content="Et le premier ?"), LEVERS_A]
    assert _position("Et le précédent ?", first, assistant) is None
    # Without an item to step from, "next" points at nothing.
    assert _position("Et le suivant ?", [LEVERS_Q, LEVERS_A], assistant) is None


def test_a_followup_without_ordinal_keeps_the_item_of_the_previous_turn(assistant: Assistant) -> None:
    history = [Turn(role="user", content="Que dit le septième levier ?"), Turn(role="assistant", content="…")]
    query = standalone_query("Pourquoi est-ce important ?", history, assistant.index.chunks)
    assert query.list_item is not None and query.list_item.position == 7


def test_ellipsis_carries_the_previous_question(assistant: Assistant) -> None:
    history = [Turn(role="user", content="Quel lien entre PTCE et développement local ?"), LEVERS_A]
    query = standalone_query("Et en milieu rural ?", history, assistant.index.chunks)
    assert query.followup and "développement local" in query.text and "rural" in query.text


def test_standalone_question_is_left_alone(assistant: Assistant) -> None:
    question = "Quel rôle jouent les collectivités dans l'accompagnement ?"
    query = standalone_query(question, [LEVERS_Q, LEVERS_A], assistant.index.chunks)
    assert query.text == question and not query.followup


def test_a_short_new_question_is_not_merged_with_the_previous_one(assistant: Assistant) -> None:
    history = [LEVERS_Q, LEVERS_A]
    assert not is_followup("Quelle est la capitale du Japon ?")
    assert not is_followup("Qu'est-ce qu'un PTCE ?")
    assert not is_followup("Qui a publié l'étude et quand ?")
    assert is_followup("Pourquoi est-ce important ?")
    answer = assistant.ask("Quelle est la capitale du Japon ?", history)
    assert answer.abstained and answer.standalone_query == "Quelle est la capitale du Japon ?"
