"""The extractive composer: a lead saying where the answer is, then verbatim quotes grouped by section.

Built only from the corpus's own structure (document title, section headings, list positions), so
it needs no LLM and cannot say anything the quotes do not:

    Selon « Les PTCE et le rôle des collectivités », partie « Rôle des collectivités » :

    - « Dans l'accompagnement, car au-delà des soutiens financiers, … » [1]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ptce_assistant.answering.answer import Citation
from ptce_assistant.answering.citations import cite, markdown_literal
from ptce_assistant.answering.evidence import SentenceCandidate
from ptce_assistant.chunking import Chunk
from ptce_assistant.conversation import StandaloneQuery
from ptce_assistant.retrieval import Hit
from ptce_assistant.text import sentence_spans, strip_accents

_WHOLE_LIST = re.compile(
    r"\b(quels sont|quelles sont|lesquels|lesquelles|liste|enumere|cite[rz]? les|les \d+|les (huit|trois|quatre)"
    r"|what are|list|which are|name the)\b",
    re.IGNORECASE,
)
_SOURCE = {"fr": "Selon « {title} »", "en": "According to « {title} »"}
_PART = {"fr": "partie « {heading} »", "en": "section « {heading} »"}
_INTRO = {"fr": "introduction", "en": "introduction"}
_PARTS = {"fr": "{n} parties répondent", "en": "{n} sections answer"}
_LIST = {"fr": "{n} points", "en": "{n} items"}
_SEVERAL = {"fr": "Selon {n} documents du corpus", "en": "According to {n} documents of the corpus"}
_COLON = {"fr": " :", "en": ":"}  # French typography: a space before the colon


def wants_whole_list(query: str) -> bool:
    """'Quels sont les huit leviers ?' asks for every item, not the best one."""
    return bool(_WHOLE_LIST.search(strip_accents(query)))


@dataclass(frozen=True)
class _Quote:
    """A verbatim span of one passage, to be cited."""

    chunk: Chunk
    start: int
    end: int


def part_label(chunk: Chunk, lang: str) -> str:
    """'partie « Rôle des collectivités »', or 'introduction' for text before the first heading."""
    if len(chunk.breadcrumb) <= 1:
        return _INTRO[lang]
    return _PART[lang].format(heading=markdown_literal(chunk.heading))


def compose_extractive(
    query: StandaloneQuery,
    hits: Sequence[Hit],
    candidates: Sequence[SentenceCandidate],
    list_items: Sequence[Hit],
    lang: str,
    max_sentences: int,
    threshold: float,
) -> tuple[str, list[Citation]]:
    """Answer text with [n] markers and the citations it uses.

    `list_items` holds every item of the list the question asks for in full (empty otherwise);
    `candidates` are the scored sentences, best first: the best is always quoted, the others only
    while their probability of answering reaches `threshold`.
    """
    if list_items:
        return _whole_list(list_items, lang)
    if query.list_item is not None and hits:
        quotes = [_Quote(hits[0].chunk, 0, len(hits[0].chunk.text))]  # the item the conversation named, whole
    else:
        quotes = _merged(_chosen(candidates, max_sentences, threshold))
    return _grouped(quotes, lang)


def _chosen(candidates: Sequence[SentenceCandidate], max_sentences: int, threshold: float) -> list[SentenceCandidate]:
    """The best sentence, then the next ones while they are likely to carry the answer too."""
    chosen = list(candidates[:1])
    for candidate in candidates[1:]:
        if len(chosen) >= max_sentences or candidate.probability < threshold:
            break
        chosen.append(candidate)
    return chosen


def _merged(chosen: Sequence[SentenceCandidate]) -> list[_Quote]:
    """Neighbouring sentences of one passage become one quote (a claim and its explanation)."""
    quotes: list[_Quote] = []
    for c in sorted(chosen, key=lambda c: (c.hit.chunk.doc_id, c.hit.chunk.start, c.start)):
        last = quotes[-1] if quotes else None
        if last and last.chunk.chunk_id == c.hit.chunk.chunk_id and _adjacent(last.chunk.text, last.end, c.start):
            quotes[-1] = _Quote(last.chunk, last.start, c.end)
        else:
            quotes.append(_Quote(c.hit.chunk, c.start, c.end))
    rank = {c.hit.chunk.chunk_id: i for i, c in reversed(list(enumerate(chosen)))}
    return sorted(quotes, key=lambda q: rank[q.chunk.chunk_id])  # the best evidence first


def _adjacent(text: str, end: int, start: int) -> bool:
    return not text[end:start].strip()


def _grouped(quotes: Sequence[_Quote], lang: str) -> tuple[str, list[Citation]]:
    """The lead, then the quotes under their section, each with its [n] and its list position."""
    groups: dict[tuple[str, str], list[_Quote]] = {}
    for quote in quotes:
        groups.setdefault((quote.chunk.title, part_label(quote.chunk, lang)), []).append(quote)
    titles = {title for title, _ in groups}
    citations: list[Citation] = []
    blocks: list[str] = []
    for (title, part), members in groups.items():
        lines = []
        if len(groups) > 1:
            where = part if len(titles) == 1 else f"{_SOURCE[lang].format(title=markdown_literal(title))}, {part}"
            lines.append(f"{where[0].upper()}{where[1:]}{_COLON[lang]}")
        for quote in members:
            citations.append(cite(len(citations) + 1, quote.chunk, quote.start, quote.end))
            item = quote.chunk.item_label(lang)
            text = markdown_literal(quote.chunk.text[quote.start : quote.end])
            position = f"{item}{_COLON[lang]} " if item else ""
            lines.append(f"- {position}« {text} » [{len(citations)}]")
        blocks.append("\n".join(lines))
    return f"{_lead(groups, titles, lang)}\n\n" + "\n\n".join(blocks), citations


def _lead(groups: dict[tuple[str, str], list[_Quote]], titles: set[str], lang: str) -> str:
    """One line: which document and which part the quotes come from."""
    if len(titles) > 1:
        return _SEVERAL[lang].format(n=len(titles)) + _COLON[lang]
    source = _SOURCE[lang].format(title=markdown_literal(next(iter(titles))))
    where = next(iter(groups))[1] if len(groups) == 1 else _PARTS[lang].format(n=len(groups))
    return f"{source}, {where}{_COLON[lang]}"


def _whole_list(items: Sequence[Hit], lang: str) -> tuple[str, list[Citation]]:
    """Every item of a list, numbered, each quoted by its first sentence."""
    citations: list[Citation] = []
    lines: list[str] = []
    for hit in items:
        spans = sentence_spans(hit.chunk.text)
        start, end = spans[0] if spans else (0, len(hit.chunk.text))
        citations.append(cite(len(citations) + 1, hit.chunk, start, end))
        lines.append(f"{hit.chunk.list_position}. « {markdown_literal(hit.chunk.text[start:end])} » [{len(citations)}]")
    first = items[0].chunk
    source = _SOURCE[lang].format(title=markdown_literal(first.title))
    count = _LIST[lang].format(n=first.list_length or len(items))
    return f"{source}, {part_label(first, lang)} ({count}){_COLON[lang]}\n\n" + "\n".join(lines), citations
