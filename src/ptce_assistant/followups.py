"""Where to go next: follow-up questions drawn from the corpus's own structure around an answer.

The suggestions walk the study's outline from what the answer cites: the neighbouring levers of a cited
lever, the other points of a cited list, then the neighbouring sections of the document. Each one names
a real lever, point or section, so that asking it lands on that passage (the conversation module maps
"levier 4" / "point 2" onto the recorded list item).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from ptce_assistant.answering.answer import Answer
from ptce_assistant.chunking import Chunk
from ptce_assistant.config import Lang
from ptce_assistant.levers import find_levers
from ptce_assistant.text import strip_accents, words

Kind = Literal["lever", "point", "section"]
MAX_SUGGESTIONS = 3
_GIST_CHARS = 60


@dataclass(frozen=True)
class FollowUp:
    """A suggested question and the part of the corpus it leads to."""

    question: str
    kind: Kind
    breadcrumb: tuple[str, ...]
    position: int | None = None

    @property
    def section(self) -> str:
        """The heading of the section the question leads to."""
        return self.breadcrumb[-1]


def gist(text: str, limit: int = _GIST_CHARS) -> str:
    """The opening words of a passage: its first clause when short enough, else cut on a word with «…»."""
    text = " ".join(text.split())
    for stop in ",.;:":
        cut = text.find(stop)
        if 20 <= cut <= limit:
            return text[:cut]
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"


def _lever_question(position: int, count: int, text: str, lang: Lang) -> str:
    if lang == "en":
        return f"What does lever {position} of {count} say?"
    return f"Que dit le levier {position} sur {count} : « {gist(text)} » ?"


def _point_question(position: int, count: int, heading: str, lang: Lang) -> str:
    if lang == "en":
        return f"What does point {position} of {count} of the part « {heading} » say?"
    return f"Que dit le point {position} sur {count} de la partie « {heading} » ?"


def _section_question(heading: str, lang: Lang) -> str:
    if lang == "en":
        return f"What does the study say in the part « {heading} »?"
    return f"Que dit l'étude dans la partie « {heading} » ?"


def _same(a: str, b: str) -> bool:
    """Two questions that differ only by case, accents, spacing or punctuation."""
    return words(strip_accents(a.lower())) == words(strip_accents(b.lower()))


def _sections(chunks: Sequence[Chunk], doc_id: str) -> list[tuple[str, ...]]:
    """The document's sections (breadcrumbs below the title) in reading order."""
    seen: dict[tuple[str, ...], None] = {}
    for chunk in sorted((c for c in chunks if c.doc_id == doc_id), key=lambda c: c.start):
        if len(chunk.breadcrumb) > 1:
            seen.setdefault(tuple(chunk.breadcrumb), None)
    return list(seen)


def _neighbours(position: int, count: int) -> list[int]:
    """The next item, the previous one, then the others outward (1-based)."""
    order: list[int] = []
    for step in range(1, count):
        order += [p for p in (position + step, position - step) if 1 <= p <= count]
    return order


def suggest(answer: Answer, chunks: Sequence[Chunk], asked: Iterable[str] = ()) -> list[FollowUp]:
    """Two or three follow-ups for `answer`, none repeating the question, a previous one or a cited passage.

    Cited passages lead (a lever to its neighbours, a list item to the other points of its list, any
    passage to the neighbouring sections); an abstention's nearest passages lead to their sections.
    """
    lang: Lang = answer.lang
    by_id = {c.chunk_id: c for c in chunks}
    starts = [by_id[c.chunk_id] for c in answer.citations if c.chunk_id in by_id]
    if not starts:
        starts = [hit.chunk for hit in answer.consulted if hit.chunk.chunk_id in by_id]
    if not starts:
        return []
    cited_ids = {c.chunk_id for c in answer.citations}
    cited_items = {(tuple(by_id[i].breadcrumb), by_id[i].list_position) for i in cited_ids if i in by_id}
    levers = find_levers(chunks)
    lever_crumb = tuple(levers[0].first.breadcrumb) if levers else None
    first_of_item: dict[tuple[tuple[str, ...], int | None], Chunk] = {}
    for chunk in sorted(chunks, key=lambda c: c.start):
        first_of_item.setdefault((tuple(chunk.breadcrumb), chunk.list_position), chunk)

    candidates: list[FollowUp] = []
    if answer.abstained:  # the nearest passages did not answer: offer their sections as a whole
        for chunk in starts:
            if len(chunk.breadcrumb) > 1:
                candidates.append(FollowUp(_section_question(chunk.heading, lang), "section", tuple(chunk.breadcrumb)))
    for chunk in starts if not answer.abstained else ():  # the items around each cited list item
        crumb = tuple(chunk.breadcrumb)
        if not chunk.list_position or not chunk.list_length:
            continue
        for position in _neighbours(chunk.list_position, chunk.list_length)[:2]:
            item = first_of_item.get((crumb, position))
            if item is None or (crumb, position) in cited_items:
                continue
            if crumb == lever_crumb:
                question = _lever_question(position, chunk.list_length, item.text, lang)
                candidates.append(FollowUp(question, "lever", crumb, position))
            else:
                question = _point_question(position, chunk.list_length, crumb[-1], lang)
                candidates.append(FollowUp(question, "point", crumb, position))
    cited_sections = {tuple(c.breadcrumb) for c in starts} if not answer.abstained else set()
    for chunk in starts:  # then the sections next to each cited one
        sections = _sections(chunks, chunk.doc_id)
        crumb = tuple(chunk.breadcrumb)
        if crumb not in sections:
            continue
        for position in _neighbours(sections.index(crumb) + 1, len(sections)):
            section = sections[position - 1]
            if section not in cited_sections:
                candidates.append(FollowUp(_section_question(section[-1], lang), "section", section))

    chosen: list[FollowUp] = []
    previous = [answer.question, *asked]
    for candidate in candidates:
        if any(_same(candidate.question, q) for q in [*previous, *(c.question for c in chosen)]):
            continue
        chosen.append(candidate)
        if len(chosen) == MAX_SUGGESTIONS:
            break
    return chosen


__all__ = ["FollowUp", "gist", "suggest"]
