"""Records for tests, made one way: passages of a text, hits over them, answers citing them."""

from __future__ import annotations

from ptce_assistant.answering.answer import Answer, Citation
from ptce_assistant.chunking import Chunk
from ptce_assistant.retrieval import Hit


def paragraph_chunk(
    doc: str,
    n: int,
    first_words: str,
    title: str,
    heading: str | None,
    position: int | None = None,
    length: int | None = None,
) -> Chunk:
    """The paragraph of `doc` that starts with `first_words`, as chunk `n` of document "doc" (exact offsets).

    `heading` None puts the passage right under the title; `position`/`length` make it a list item.
    """
    start = doc.index(first_words)
    end = doc.find("\n\n", start)
    end = len(doc) if end == -1 else end
    return Chunk(
        chunk_id=f"doc#{n}",
        doc_id="doc",
        title=title,
        text=doc[start:end],
        breadcrumb=[title, heading] if heading else [title],
        list_position=position,
        list_length=length,
        start=start,
        end=end,
    )


def hit(rank: int, chunk: Chunk, score: float | None = None, **scores: float) -> Hit:
    """`chunk` found at `rank` (fused score 1/rank unless given; dense_similarity etc. as keywords)."""
    return Hit(rank=rank, chunk=chunk, score=1.0 / rank if score is None else score, **scores)


def answer(text: str, citations: list[Citation], **fields: object) -> Answer:
    """An answer of `text` citing `citations` (question "q", confidence 0.8 unless given)."""
    values: dict[str, object] = {
        "question": "q",
        "standalone_query": "q",
        "answer": text,
        "abstained": False,
        "confidence": 0.8,
        "citations": citations,
        **fields,
    }
    return Answer.model_validate(values)
