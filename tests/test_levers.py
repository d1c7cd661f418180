"""The levers: found from the corpus structure, cited, ranked for a territory and a stage."""

from __future__ import annotations

from ptce_assistant.assistant import Assistant, citation_is_valid
from ptce_assistant.chunking import Chunk
from ptce_assistant.levers import (
    find_levers,
    is_lever_heading,
    lever_question,
    other_passages,
    profile_query,
    rank_levers,
    recommend,
    related_passages,
)
from ptce_assistant.retrieval import Hit


def chunk(
    n: int, heading: str, position: int | None = None, length: int | None = None, doc: str = "a.txt", text: str = ""
) -> Chunk:
    body = text or f"passage {n}"
    return Chunk(
        chunk_id=f"{doc}#{n:04d}",
        doc_id=doc,
        title="Étude",
        text=body,
        breadcrumb=["Étude", heading],
        list_position=position,
        list_length=length,
        start=n * 100,
        end=n * 100 + len(body),
    )


def test_lever_headings_are_recognised_without_case_or_accents() -> None:
    assert is_lever_heading("8 leviers au développement des PTCE ont été identifiés")
    assert is_lever_heading("LES LEVIERS D'ACTION")
    assert is_lever_heading("Un levier décisif")
    assert not is_lever_heading("Rôle des collectivités")
    assert not is_lever_heading("Relever les défis")  # "relever" is not a lever


def test_the_levers_are_the_list_under_the_lever_heading() -> None:
    chunks = [
        chunk(0, "Rôle des collectivités", 1, 2),
        chunk(1, "Rôle des collectivités", 2, 2),
        chunk(2, "Trois leviers", None, None),  # the paragraph introducing the list
        chunk(3, "Trois leviers", 1, 3),
        chunk(4, "Trois leviers", 2, 3),
        chunk(5, "Trois leviers", 3, 3),
        chunk(6, "Conclusion"),
    ]
    levers = find_levers(chunks)
    assert [lever.position for lever in levers] == [1, 2, 3]
    assert [lever.first.chunk_id for lever in levers] == ["a.txt#0003", "a.txt#0004", "a.txt#0005"]
    assert levers[1].label == "levier 2 sur 3"


def test_a_long_lever_split_over_two_chunks_is_one_lever() -> None:
    chunks = [
        chunk(1, "2 leviers", 1, 2, text="Premier."),
        chunk(2, "2 leviers", 2, 2, text="Deuxième, début."),
        chunk(3, "2 leviers", 2, 2, text="Deuxième, suite."),
    ]
    levers = find_levers(chunks)
    assert len(levers) == 2
    assert levers[1].text == "Deuxième, début. Deuxième, suite."
    assert levers[1].chunk_ids == {"a.txt#0002", "a.txt#0003"}


def test_the_list_whose_heading_announces_its_length_wins() -> None:
    longer = [chunk(i, "Des leviers divers", i, 5, doc="a.txt") for i in range(1, 6)]
    announced = [chunk(i, "4 leviers pour agir", i, 4, doc="b.txt") for i in range(1, 5)]
    assert [lever.first.doc_id for lever in find_levers(longer + announced)] == ["b.txt"] * 4
    assert len(find_levers(longer)) == 5
    assert find_levers([chunk(1, "Rôle", 1, 1)]) == []


def test_levers_are_ranked_by_their_fused_score_then_study_order() -> None:
    levers = find_levers([chunk(i, "4 leviers", i, 4) for i in range(1, 5)])
    hits = [
        Hit(rank=1, chunk=levers[2].first, score=0.05),
        Hit(rank=2, chunk=chunk(9, "Autre"), score=0.04),
        Hit(rank=3, chunk=levers[0].first, score=0.03),
    ]
    ranked = rank_levers(levers, hits)
    assert [r.lever.position for r in ranked] == [3, 1, 2, 4]
    assert [r.rank for r in ranked] == [1, 2, 3, 4]
    assert ranked[0].score == 0.05 and ranked[3].score == 0.0
    assert [h.chunk.chunk_id for h in other_passages(hits, levers, limit=5)] == ["a.txt#0009"]


def test_the_profile_query_carries_both_answers() -> None:
    assert "rural" in profile_query("rural", "emergence") and "émergence" in profile_query("rural", "emergence")
    assert profile_query("urbain", "developpement") != profile_query("rural", "developpement")


def test_the_study_has_eight_levers_cited_verbatim(assistant: Assistant) -> None:
    levers = find_levers(assistant.index.chunks)
    assert len(levers) == 8
    seventh = levers[6]
    assert seventh.label == "levier 7 sur 8"
    assert seventh.text.startswith("Soutenir l'emploi et les fonctions de coordination")
    assert seventh.first.heading == "8 leviers au développement des PTCE ont été identifiés"
    text = assistant.index.document_text(seventh.first.doc_id)
    assert all(text[lever.first.start : lever.first.end] == lever.text for lever in levers)


def test_the_ranking_follows_the_territory(assistant: Assistant) -> None:
    urban = recommend(assistant, "urbain", "developpement")
    rural = recommend(assistant, "rural", "emergence")
    assert sorted(r.lever.position for r in urban.levers) == list(range(1, 9))
    # Lever 6 is the one on urban planning and real-estate projects.
    assert urban.levers[0].lever.position == 6
    assert [r.lever.position for r in rural.levers].index(6) > 0
    # The rural profile brings up the study's passage on rural specifics, and no lever twice.
    assert "ruralité" in rural.passages[0].chunk.text
    lever_ids = {cid for r in rural.levers for cid in r.lever.chunk_ids}
    assert not lever_ids & {h.chunk.chunk_id for h in rural.passages}
    assert len(rural.passages) == 3


def test_related_passages_exclude_the_levers(assistant: Assistant) -> None:
    levers = find_levers(assistant.index.chunks)
    related = related_passages(assistant, levers[0], levers, limit=3)
    assert len(related) == 3
    assert not {h.chunk.chunk_id for h in related} & {cid for lever in levers for cid in lever.chunk_ids}


def test_asking_about_a_lever_cites_that_lever(assistant: Assistant) -> None:
    levers = find_levers(assistant.index.chunks)
    for lever in (levers[0], levers[6]):
        answer = assistant.ask(lever_question(lever))
        assert not answer.abstained
        assert answer.citations[0].chunk_id == lever.first.chunk_id
        assert all(citation_is_valid(c, assistant.index) for c in answer.citations)
