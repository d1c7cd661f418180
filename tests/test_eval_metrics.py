"""Offline metrics on hand-made answers and rankings with known values."""

from __future__ import annotations

from functools import partial

import pytest

from factories import answer
from ptce_assistant.answering.answer import Citation, Verification
from ptce_assistant.chunking import Chunk
from ptce_assistant.evals.dataset import EvalCase
from ptce_assistant.evals.metrics import (
    CONTEXT_SEPARATOR,
    aggregate,
    answer_markers,
    answer_scores,
    citation_precision,
    citations_valid,
    context_chars_to_evidence,
    evidence_cited,
    passed,
    percentiles,
    retrieval_scores,
    sentence_scores,
    supported_sentence_rate,
)

DOC = "d.txt"
FIRST = "Le RTES a publié en mars 2014 une étude sur les rôles des collectivités locales."
SECOND = "Les collectivités soutiennent l'emploi et les fonctions de coordination dans le long terme."
TEXT = f"{FIRST}\n\n{SECOND}\n"
QUOTE = "soutiennent l'emploi et les fonctions de coordination dans le long terme"


class FakeIndex:
    """What the citation checks read from a CorpusIndex: chunks by id and document texts."""

    def __init__(self) -> None:
        start = TEXT.index(SECOND)
        self.by_id = {
            "d#0": Chunk(
                chunk_id="d#0", doc_id=DOC, title="Étude", text=FIRST, breadcrumb=["Étude"], start=0, end=len(FIRST)
            ),
            "d#1": Chunk(
                chunk_id="d#1",
                doc_id=DOC,
                title="Étude",
                text=SECOND,
                breadcrumb=["Étude"],
                start=start,
                end=start + len(SECOND),
            ),
        }

    def document_text(self, doc_id: str) -> str:
        return TEXT


@pytest.fixture
def index() -> FakeIndex:
    return FakeIndex()


def cite(n: int, chunk: Chunk, quote: str | None = None, shift: int = 0) -> Citation:
    quote = quote if quote is not None else chunk.text
    offset = chunk.text.find(quote) if quote in chunk.text else 0
    return Citation(
        n=n,
        chunk_id=chunk.chunk_id,
        doc_id=chunk.doc_id,
        title=chunk.title,
        breadcrumb=chunk.breadcrumb,
        page=None,
        quote=quote,
        start=chunk.start + offset + shift,
        end=chunk.start + offset + shift + len(quote),
    )


def case(answerable: bool = True, lang: str = "fr") -> EvalCase:
    return EvalCase.model_validate(
        {
            "id": "c1",
            "question": "q",
            "answerable": answerable,
            "lang": lang,
            "expected_quotes": [QUOTE] if answerable else [],
        }
    )


# Retrieval -------------------------------------------------------------------------------------
def test_hit_at_k_and_reciprocal_rank() -> None:
    scores = retrieval_scores(["sans rapport", f"... {SECOND}", "autre"], [QUOTE])
    assert scores["hit@1"] == 0.0
    assert scores["hit@3"] == 1.0 and scores["hit@5"] == 1.0
    assert scores["mrr@10"] == 0.5


def test_evidence_beyond_depth_scores_zero() -> None:
    ranked = ["sans rapport"] * 10 + [SECOND]
    scores = retrieval_scores(ranked, [QUOTE])
    assert scores["mrr@10"] == 0.0 and scores["hit@5"] == 0.0


def test_half_of_a_quote_is_a_hit() -> None:
    half = QUOTE[: len(QUOTE) // 2 + 1]
    assert retrieval_scores([f"xx {half} yy"], [QUOTE])["hit@1"] == 1.0
    assert retrieval_scores([QUOTE[:10]], [QUOTE])["hit@1"] == 0.0


def test_character_budget_counts_the_context_up_to_the_covering_passage() -> None:
    ranked = ["a" * 300, SECOND + " " + "b" * (200 - len(SECOND) - 1)]
    assert context_chars_to_evidence(ranked, [QUOTE]) == 300 + len(CONTEXT_SEPARATOR) + 200
    scores = retrieval_scores(ranked, [QUOTE])
    assert (scores["evidence@400"], scores["evidence@800"], scores["evidence@1600"]) == (0.0, 1.0, 1.0)
    assert retrieval_scores([SECOND], [QUOTE])["evidence@400"] == 1.0


# Citations -------------------------------------------------------------------------------------
def test_valid_citations(index: FakeIndex) -> None:
    good = answer("« Les collectivités... » [1]", [cite(1, index.by_id["d#1"], QUOTE)])
    assert citations_valid(good, index)  # type: ignore[arg-type]


def test_validity_catches_a_non_verbatim_quote(index: FakeIndex) -> None:
    reworded = cite(1, index.by_id["d#1"], QUOTE.replace("soutiennent", "aident"))
    assert not citations_valid(answer("x [1]", [reworded]), index)  # type: ignore[arg-type]


def test_validity_catches_wrong_offsets(index: FakeIndex) -> None:
    shifted = cite(1, index.by_id["d#1"], QUOTE, shift=3)
    assert not citations_valid(answer("x [1]", [shifted]), index)  # type: ignore[arg-type]


def test_validity_catches_a_dangling_marker(index: FakeIndex) -> None:
    dangling = answer("Une phrase [1]. Une autre [2].", [cite(1, index.by_id["d#1"], QUOTE)])
    assert not citations_valid(dangling, index)  # type: ignore[arg-type]
    assert answer_markers("a [1, 3] b [2][4]") == [1, 3, 2, 4]


def test_an_answer_without_citation_is_not_valid(index: FakeIndex) -> None:
    assert not citations_valid(answer("Réponse sans source.", []), index)  # type: ignore[arg-type]


def test_precision_and_evidence_hit(index: FakeIndex) -> None:
    both = answer(
        "a [1] b [2] c [3]",
        [cite(1, index.by_id["d#0"]), cite(2, index.by_id["d#1"]), cite(3, index.by_id["d#1"], QUOTE)],
    )
    assert citation_precision(both, [QUOTE], index) == 0.5  # type: ignore[arg-type]  # d#1 counted once
    assert evidence_cited(both, [QUOTE])
    off_target = answer("a [1]", [cite(1, index.by_id["d#0"])])
    assert citation_precision(off_target, [QUOTE], index) == 0.0  # type: ignore[arg-type]
    assert not evidence_cited(off_target, [QUOTE])
    assert citation_precision(answer("rien", []), [QUOTE], index) is None  # type: ignore[arg-type]


# Answers ---------------------------------------------------------------------------------------
def test_abstention_accuracy_and_false_abstention(index: FakeIndex) -> None:
    abstained = answer("Le corpus ne répond pas.", [], abstained=True)
    on_unanswerable = answer_scores(case(answerable=False), abstained, index)  # type: ignore[arg-type]
    assert on_unanswerable["abstention_accuracy"] == 1.0
    assert on_unanswerable["false_abstention_rate"] is None
    assert on_unanswerable["decision_accuracy"] == 1.0
    assert on_unanswerable["citation_validity"] is None and on_unanswerable["evidence_hit"] is None

    on_answerable = answer_scores(case(answerable=True), abstained, index)  # type: ignore[arg-type]
    assert on_answerable["false_abstention_rate"] == 1.0
    assert on_answerable["abstention_accuracy"] is None
    assert on_answerable["decision_accuracy"] == 0.0

    answered = answer("x [1]", [cite(1, index.by_id["d#0"])])
    wrongly_answered = answer_scores(case(answerable=False), answered, index)  # type: ignore[arg-type]
    assert wrongly_answered["abstention_accuracy"] == 0.0


def test_language_match(index: FakeIndex) -> None:
    french = answer("x [1]", [cite(1, index.by_id["d#1"])], lang="fr")
    assert answer_scores(case(lang="fr"), french, index)["language_match"] == 1.0  # type: ignore[arg-type]
    assert answer_scores(case(lang="en"), french, index)["language_match"] == 0.0  # type: ignore[arg-type]


def test_supported_sentences(index: FakeIndex) -> None:
    rate = partial(supported_sentence_rate, index=index)
    extractive = answer("« Phrase. » [1]", [cite(1, index.by_id["d#1"])], mode="extractive")
    assert rate(extractive) == 1.0  # by construction
    fallback = extractive.model_copy(
        update={"mode": "generative", "verification": Verification(fallback="nothing supported")}
    )
    assert rate(fallback) == 1.0
    generated = answer(
        "Les collectivités soutiennent l'emploi et la coordination [1]. Le budget atteint 2015 euros [1]. "
        "Une phrase sans source.",
        [cite(1, index.by_id["d#1"])],
        mode="generative",
        model="m",
    )
    assert rate(generated) == 0.5  # the uncited sentence is not counted
    assert rate(answer("Rien.", [], abstained=True)) is None


# Aggregation -----------------------------------------------------------------------------------
def test_aggregate_skips_cases_where_a_metric_does_not_apply() -> None:
    result = aggregate([{"hit@1": 1.0, "x": None}, {"hit@1": 0.0, "x": None}, {"hit@1": 1.0}], ["hit@1", "x"])
    assert result["hit@1"].value == pytest.approx(2 / 3) and result["hit@1"].n == 3
    assert result["x"].value is None and result["x"].n == 0


def test_pass_rules() -> None:
    assert passed("hit@3", 1.0) and not passed("hit@3", 0.0)
    assert passed("mrr@10", 0.25) and not passed("mrr@10", 0.0)
    assert passed("false_abstention_rate", 0.0) is True and passed("false_abstention_rate", 1.0) is False
    assert passed("citation_precision", 0.5) is False
    assert passed("evidence_hit", None) is None


def test_percentiles() -> None:
    result = percentiles([10.0, 20.0, 30.0, 40.0, 50.0])
    assert (result.p50, result.p95, result.n) == (30.0, 48.0, 5)
    assert percentiles([]).p50 is None


def test_right_sentence_is_scored_only_when_the_first_passage_is_right(index: FakeIndex) -> None:
    two = "Les collectivités repèrent les projets. " + SECOND
    top = index.by_id["d#1"].model_copy(update={"text": two})
    right = answer("- « … » [1]", [cite(1, top, SECOND)], standalone_query="collectivités coordination emploi")
    wrong = answer("- « … » [1]", [cite(1, top, "Les collectivités repèrent les projets.")], standalone_query="projets")
    assert sentence_scores(right, top, [QUOTE]) == {"right_sentence": 1.0, "right_sentence_word_overlap": 1.0}
    # The word-overlap baseline picks the sentence sharing the most words with the query ("projets").
    assert sentence_scores(wrong, top, [QUOTE]) == {"right_sentence": 0.0, "right_sentence_word_overlap": 0.0}
    assert set(sentence_scores(right, index.by_id["d#0"], [QUOTE]).values()) == {None}  # wrong first passage
    assert set(sentence_scores(right.model_copy(update={"abstained": True}), top, [QUOTE]).values()) == {None}
