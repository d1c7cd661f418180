"""Lists in answers: the item a conversation names put first, every item of a list asked for in full."""

from __future__ import annotations

from collections.abc import Sequence

from ptce_assistant.answering.extractive import wants_whole_list
from ptce_assistant.answering.question import Question
from ptce_assistant.chunking import Chunk
from ptce_assistant.conversation import StandaloneQuery
from ptce_assistant.lexical import french_terms
from ptce_assistant.retrieval import Hit


def pinned_item_first(query: StandaloneQuery, hits: list[Hit], chunks: Sequence[Chunk]) -> list[Hit]:
    """An ordinal reference ("le septième") puts that list item of `chunks` first."""
    if query.list_item is None:
        return hits
    ref = query.list_item
    item = next((c for c in chunks if c.breadcrumb == ref.breadcrumb and c.list_position == ref.position), None)
    if item is None:
        return hits
    found = next((h for h in hits if h.chunk.chunk_id == item.chunk_id), None)
    pinned = found or Hit(rank=1, chunk=item, score=1.0)
    rest = [h for h in hits if h.chunk.chunk_id != item.chunk_id]
    return [h.model_copy(update={"rank": i}) for i, h in enumerate([pinned, *rest], start=1)]


def whole_list(question: Question, hits: list[Hit], chunks: Sequence[Chunk]) -> list[Hit]:
    """Every item of the list a question asks for in full, when the top passage is in a list."""
    query = question.standalone
    if query.list_item is not None or query.followup or not hits or not wants_whole_list(query.text):
        return []
    top = hits[0].chunk
    if not top.list_length:
        return []
    # The question must name the list by its head noun ("les huit leviers", "the levers"), not just
    # land in it: "Quelles sont les spécificités en rural ?" wants one item of "Transversalité, …, rural".
    asked = set(french_terms(question.expanded))
    head = next((t for t in french_terms(top.heading) if not t.isdigit()), None)
    if head not in asked:
        return []
    items = [c for c in chunks if c.breadcrumb == top.breadcrumb and c.list_position]
    return [Hit(rank=i, chunk=c, score=0.0) for i, c in enumerate(items, start=1)]
