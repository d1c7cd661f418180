"""The extractive composer on fake search results (no index): lead, sections, list positions, what is quoted."""

from __future__ import annotations

from factories import hit, paragraph_chunk
from ptce_assistant.answering.evidence import SentenceCandidate
from ptce_assistant.answering.extractive import compose_extractive
from ptce_assistant.chunking import Chunk
from ptce_assistant.conversation import ListReference, StandaloneQuery
from ptce_assistant.retrieval import Hit

TITLE = "Les PTCE et le rôle des collectivités"
LEVERS = "8 leviers au développement des PTCE ont été identifiés"
RURAL = "Transversalité et spécificité en rural"
DOC = (
    "Le RTES a publié une étude. Elle porte sur cinquante initiatives.\n\n"
    "Les PTCE couvrent plusieurs champs. Ils se confrontent aux cloisonnements des services.\n\n"
    "Organiser la transversalité à l'intérieur des collectivités. Cela améliore l'orientation des porteurs."
)


def _chunk(
    n: int, first_words: str, heading: str | None, position: int | None = None, length: int | None = None
) -> Chunk:
    return paragraph_chunk(DOC, n, first_words, TITLE, heading, position, length)


INTRO = _chunk(0, "Le RTES", None)
SILOS = _chunk(1, "Les PTCE couvrent", RURAL, 1, 4)
LEVER3 = _chunk(2, "Organiser", LEVERS, 3, 8)
QUERY = StandaloneQuery(text="Pourquoi les services ne se parlent-ils pas ?")


def _hit(rank: int, chunk: Chunk) -> Hit:
    return hit(rank, chunk, dense_similarity=0.85)


def _sentence(hit: Hit, position: int, probability: float) -> SentenceCandidate:
    spans = [(0, hit.chunk.text.index(".") + 1)]
    second = hit.chunk.text.index(".") + 2
    spans.append((second, len(hit.chunk.text)))
    start, end = spans[position]
    return SentenceCandidate(
        hit=hit, start=start, end=end, position=position, similarity=0.8, overlap=0.5, probability=probability
    )


def _compose(candidates: list[SentenceCandidate], lang: str = "fr", threshold: float = 0.3, **kw: object) -> str:
    hits = sorted({c.hit.rank: c.hit for c in candidates}.values(), key=lambda h: h.rank)
    query = kw.get("query", QUERY)
    text, citations = compose_extractive(query, hits, candidates, [], lang, 3, threshold)  # type: ignore[arg-type]
    for citation in citations:
        assert DOC[citation.start : citation.end] == citation.quote  # every quote verbatim, at its offsets
    return text


def test_one_section_gets_a_lead_naming_the_document_and_the_part() -> None:
    silos = _hit(1, SILOS)
    text = _compose([_sentence(silos, 1, 0.9), _sentence(silos, 0, 0.1)])
    assert text == (
        f"Selon « {TITLE} », partie « {RURAL} » :\n\n"
        "- point 1 sur 4 : « Ils se confrontent aux cloisonnements des services. » [1]"
    )


def test_the_best_sentence_is_quoted_not_the_first_one() -> None:
    silos = _hit(1, SILOS)
    text = _compose([_sentence(silos, 1, 0.9), _sentence(silos, 0, 0.2)])
    assert "cloisonnements" in text and "plusieurs champs" not in text


def test_quotes_from_two_sections_are_grouped_under_their_parts_best_first() -> None:
    silos, lever = _hit(1, SILOS), _hit(2, LEVER3)
    text = _compose([_sentence(lever, 1, 0.8), _sentence(silos, 1, 0.6), _sentence(silos, 0, 0.1)])
    lead, first, second = text.split("\n\n")
    assert lead == f"Selon « {TITLE} », 2 parties répondent :"
    assert first == f"Partie « {LEVERS} » :\n- levier 3 sur 8 : « Cela améliore l'orientation des porteurs. » [1]"
    assert second.startswith(f"Partie « {RURAL} » :\n- point 1 sur 4 : « Ils se confrontent")


def test_sentences_below_the_threshold_are_not_padding() -> None:
    silos, intro = _hit(1, SILOS), _hit(2, INTRO)
    text = _compose([_sentence(silos, 1, 0.9), _sentence(intro, 0, 0.29)], threshold=0.3)
    assert "RTES" not in text and text.count("[") == 1


def test_neighbouring_sentences_of_a_passage_form_one_quote() -> None:
    silos = _hit(1, SILOS)
    text = _compose([_sentence(silos, 1, 0.9), _sentence(silos, 0, 0.7)])
    assert "« Les PTCE couvrent plusieurs champs. Ils se confrontent aux cloisonnements des services. » [1]" in text


def test_english_questions_get_the_same_shape_in_english() -> None:
    lever = _hit(1, LEVER3)
    text = _compose([_sentence(lever, 0, 0.9)], lang="en")
    assert text.startswith(f"According to « {TITLE} », section « {LEVERS} »:\n\n- item 3 of 8: « Organiser")


def test_an_introduction_passage_is_named_as_such() -> None:
    text = _compose([_sentence(_hit(1, INTRO), 0, 0.9)])
    assert text.startswith(f"Selon « {TITLE} », introduction :")


def test_a_list_item_named_by_the_conversation_is_quoted_whole() -> None:
    lever = _hit(1, LEVER3)
    pinned = StandaloneQuery(text="levier 3", list_item=ListReference(breadcrumb=[TITLE, LEVERS], position=3, length=8))
    text = _compose([_sentence(lever, 1, 0.9)], query=pinned)
    assert f"« {LEVER3.text} » [1]" in text


def test_a_whole_list_is_numbered_under_one_lead() -> None:
    items = [_hit(i, c) for i, c in enumerate([SILOS, LEVER3], start=1)]
    text, citations = compose_extractive(QUERY, items, [], items, "fr", 3, 0.3)
    assert text.startswith(f"Selon « {TITLE} », partie « {RURAL} » (4 points) :\n\n1. « Les PTCE couvrent")
    assert [c.n for c in citations] == [1, 2]
