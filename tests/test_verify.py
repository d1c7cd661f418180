"""The verifier keeps only cited, supported sentences and quotes the corpus verbatim."""

from __future__ import annotations

import pytest

from factories import paragraph_chunk
from ptce_assistant.answering.generative import NO_ANSWER
from ptce_assistant.answering.verify import VerifiedText, verify_answer
from ptce_assistant.chunking import Chunk

TITLE = "Les PTCE et le rôle des collectivités"
DOC = (
    f"{TITLE}\n\n"
    "Le RTES a publié en mars 2014 une étude sur les pôles territoriaux de coopération économique. "
    "L'étude a été réalisée auprès d'une cinquantaine d'initiatives.\n\n"
    "Rôle des collectivités\n\n"
    "Les collectivités repèrent les projets et accompagnent leur émergence. "
    "Au-delà des soutiens financiers, elles mobilisent leurs services et leurs agences de "
    "développement économique.\n\n"
    "Huit leviers\n\n"
    "La méconnaissance de l'ESS reste l'un des principaux freins à son développement."
)


def _chunk(n: int, first_words: str, heading: str) -> Chunk:
    return paragraph_chunk(DOC, n, first_words, TITLE, heading)


@pytest.fixture
def passages() -> list[Chunk]:
    return [
        _chunk(1, "Le RTES a publié", TITLE),
        _chunk(2, "Les collectivités repèrent", "Rôle des collectivités"),
        _chunk(3, "La méconnaissance", "Huit leviers"),
    ]


def _assert_quotes_verbatim(result: VerifiedText, passages: list[Chunk]) -> None:
    by_id = {c.chunk_id: c for c in passages}
    for citation in result.citations:
        assert DOC[citation.start : citation.end] == citation.quote
        chunk = by_id[citation.chunk_id]
        assert citation.quote in chunk.text
        assert chunk.start <= citation.start < citation.end <= chunk.end


def _reasons(result: VerifiedText) -> list[str]:
    return [str(d) for d in result.verification.dropped]


def test_keeps_supported_cited_sentences(passages: list[Chunk]) -> None:
    draft = (
        "Le RTES a publié son étude en mars 2014 [1]. "
        "Les collectivités accompagnent l'émergence des projets et mobilisent leurs agences [2]."
    )
    result = verify_answer(draft, passages)
    assert result.verification.kept_sentences == 2
    assert result.verification.checked_sentences == 2
    assert result.verification.dropped == []
    assert result.text == (
        "Le RTES a publié son étude en mars 2014 [1]. "
        "Les collectivités accompagnent l'émergence des projets et mobilisent leurs agences [2]."
    )
    assert [c.n for c in result.citations] == [1, 2]
    assert result.citations[0].quote.startswith("Le RTES a publié en mars 2014")
    assert result.citations[0].chunk_id == "doc#1"
    _assert_quotes_verbatim(result, passages)


def test_quote_is_the_best_supporting_sentence_with_document_offsets(passages: list[Chunk]) -> None:
    result = verify_answer("Les collectivités mobilisent leurs agences de développement économique [2].", passages)
    (citation,) = result.citations
    assert citation.quote == (
        "Au-delà des soutiens financiers, elles mobilisent leurs services et leurs agences de développement économique."
    )
    assert citation.start == passages[1].start + passages[1].text.index("Au-delà")
    assert citation.title == TITLE and citation.breadcrumb == [TITLE, "Rôle des collectivités"]
    _assert_quotes_verbatim(result, passages)


def test_renumbers_in_order_of_first_use(passages: list[Chunk]) -> None:
    draft = (
        "La méconnaissance de l'ESS est l'un des principaux freins à son développement [3]. "
        "Le RTES a publié une étude en 2014 [1]. "
        "Ce manque de connaissance de l'ESS freine son développement [3]."
    )
    result = verify_answer(draft, passages)
    assert result.verification.kept_sentences == 3
    assert [(c.n, c.chunk_id) for c in result.citations] == [(1, "doc#3"), (2, "doc#1")]
    assert result.text.count("[1]") == 2 and result.text.count("[2]") == 1
    assert "[3]" not in result.text


@pytest.mark.parametrize(
    ("draft", "reason"),
    [
        ("Le RTES a publié une étude en mars 2014.", "no citation"),
        ("Le RTES a publié une étude en mars 2014 [9].", "dangling citation [9]"),
        ("Le RTES a publié une étude en mars 2014 [0].", "dangling citation [0]"),
        ("Les collectivités financent les PTCE par des subventions européennes [2].", "unsupported"),
        ("Le RTES a publié son étude en mars 2015 [1].", "unsupported number 2015"),
        ("L'étude a été réalisée auprès de 120 initiatives [1].", "unsupported number 120"),
        ("Le RTES a publié son étude avec la Banque des territoires [1].", "unknown name Banque"),
        (NO_ANSWER["fr"], "no answer in passages"),
    ],
)
def test_drops_with_reason(passages: list[Chunk], draft: str, reason: str) -> None:
    kept = "Les collectivités repèrent les projets et accompagnent leur émergence [2]."
    result = verify_answer(f"{kept} {draft}", passages)
    assert _reasons(result) == [reason]
    assert result.verification.dropped[0].sentence.startswith(draft[:20])
    assert result.verification.kept_sentences == 1
    assert result.text == kept.replace("[2]", "[1]")
    assert len(result.citations) == 1


def test_fake_markers_never_reach_the_user(passages: list[Chunk]) -> None:
    draft = "Le RTES a publié une étude en mars 2014 [1][9]. Les collectivités repèrent les projets [2]."
    result = verify_answer(draft, passages)
    assert _reasons(result) == ["dangling citation [9]"]
    assert "[9]" not in result.text and "[2]" not in result.text
    assert result.text == "Les collectivités repèrent les projets [1]."


def test_spelled_numbers_in_the_passage_support_digits(passages: list[Chunk]) -> None:
    result = verify_answer("L'étude a été réalisée auprès d'environ 50 initiatives [1].", passages)
    assert result.verification.kept_sentences == 1


def test_markers_after_the_full_stop_and_grouped(passages: list[Chunk]) -> None:
    draft = "Le RTES a publié une étude en mars 2014. [1] Les collectivités repèrent les projets et l'ESS [2, 3]."
    result = verify_answer(draft, passages)
    assert result.verification.kept_sentences == 2
    assert result.text == (
        "Le RTES a publié une étude en mars 2014 [1]. Les collectivités repèrent les projets et l'ESS [2][3]."
    )
    _assert_quotes_verbatim(result, passages)


def test_a_passage_cited_without_contributing_is_not_quoted(passages: list[Chunk]) -> None:
    result = verify_answer("Les collectivités repèrent les projets et accompagnent leur émergence [2][3].", passages)
    assert [c.chunk_id for c in result.citations] == ["doc#2"]
    assert result.text.endswith("[1].")


def test_bullets_stay_on_their_own_lines(passages: list[Chunk]) -> None:
    draft = (
        "Les collectivités interviennent ainsi :\n"
        "- Elles repèrent les projets [2].\n"
        "- Elles mobilisent leurs agences de développement économique [2].\n"
        "* Elles inventent des fonds régionaux [2]."
    )
    result = verify_answer(draft, passages)
    assert _reasons(result) == ["no citation", "unsupported"]
    assert result.text.splitlines() == [
        "- Elles repèrent les projets [1].",
        "- Elles mobilisent leurs agences de développement économique [2].",
    ]


def test_returns_empty_when_nothing_is_supported(passages: list[Chunk]) -> None:
    draft = "Les PTCE reçoivent des fonds européens [1]. Ils emploient 300 salariés [2]. Bonne question."
    result = verify_answer(draft, passages)
    assert result.is_empty
    assert result.text == "" and result.citations == []
    assert result.verification.checked_sentences == 3
    assert result.verification.kept_sentences == 0
    assert _reasons(result) == ["unsupported", "unsupported number 300", "no citation"]


def test_empty_draft(passages: list[Chunk]) -> None:
    result = verify_answer("  \n", passages)
    assert result.is_empty and result.verification.checked_sentences == 0


def test_english_sentences_get_a_cognate_check(passages: list[Chunk]) -> None:
    draft = (
        "RTES published a study in March 2014 on territorial economic cooperation poles [1]. "
        "Local authorities mobilise their economic development agencies [2]. "
        "The study was funded by the European Union [1]. "
        "Hubs create many jobs in deprived neighbourhoods [3]."
    )
    result = verify_answer(draft, passages, lang="en")
    assert result.verification.kept_sentences == 2
    assert _reasons(result) == ["unknown name European", "unsupported"]
    assert [c.chunk_id for c in result.citations] == ["doc#1", "doc#2"]
    _assert_quotes_verbatim(result, passages)


def test_french_sentences_pass_in_english_mode(passages: list[Chunk]) -> None:
    result = verify_answer("Les collectivités repèrent les projets [2].", passages, lang="en")
    assert result.verification.kept_sentences == 1
