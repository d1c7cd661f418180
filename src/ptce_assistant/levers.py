"""The study's levers for local authorities, found from the corpus structure, and ranked for a territory.

The levers are the items of the list that sits under a heading naming "leviers" (the chunker records
each item's position and the list's length), so a new edition of the study needs no code change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from ptce_assistant.chunking import Chunk
from ptce_assistant.retrieval import Hit, SearchResult
from ptce_assistant.text import strip_accents


class _Chunks(Protocol):
    @property
    def chunks(self) -> Sequence[Chunk]: ...


class Corpus(Protocol):
    """What the levers need of the assistant (the facade satisfies it): its passages and its search."""

    @property
    def index(self) -> _Chunks: ...

    def search(self, query: str, k: int | None = None) -> SearchResult: ...


Territory = Literal["rural", "urbain"]
Stage = Literal["emergence", "developpement"]

# What each answer of the form means, in the study's own words (the query the levers are ranked by).
TERRITORY_TERMS: dict[Territory, str] = {
    "rural": "en milieu rural : spécificités de la ruralité, faible densité des acteurs, démarches participatives",
    "urbain": "en territoire urbain : projets d'aménagement urbain, mutualisation immobilière et foncière",
}
STAGE_TERMS: dict[Stage, str] = {
    "emergence": "au stade de l'émergence : repérage, impulsion, pédagogie sur l'ESS, concertation",
    "developpement": "au stade du développement : accompagnement, coordination dans le long terme, pérennisation",
}
RELATED_TERMS = "rôle des collectivités ; spécificités du rural"
_LEVER_HEADING = re.compile(r"\blevier", re.IGNORECASE)
_NUMBER = re.compile(r"\b(\d{1,2})\b")


@dataclass(frozen=True)
class Lever:
    """One lever: its position in the study's list and the passage(s) that state it."""

    position: int
    count: int
    chunks: tuple[Chunk, ...]

    @property
    def text(self) -> str:
        """The lever's verbatim text (a long item may span several chunks)."""
        return " ".join(c.text for c in self.chunks)

    @property
    def first(self) -> Chunk:
        """The chunk a citation of the lever points to."""
        return self.chunks[0]

    @property
    def chunk_ids(self) -> frozenset[str]:
        """Ids of the chunks that state the lever."""
        return frozenset(c.chunk_id for c in self.chunks)

    @property
    def label(self) -> str:
        """« levier 7 sur 8 »."""
        return f"levier {self.position} sur {self.count}"


@dataclass(frozen=True)
class RankedLever:
    """A lever with its fused search score for a profile (0 when the search did not reach it)."""

    lever: Lever
    score: float
    rank: int


@dataclass(frozen=True)
class Recommendation:
    """Levers ordered for a territory and stage, with the other passages that fit best."""

    query: str
    levers: list[RankedLever]
    passages: list[Hit]


def is_lever_heading(heading: str) -> bool:
    """True for a heading that names levers ("8 leviers au développement des PTCE...")."""
    return bool(_LEVER_HEADING.search(strip_accents(heading)))


def find_levers(chunks: Sequence[Chunk]) -> list[Lever]:
    """The items of the list under a heading naming levers, in order.

    When several documents have such a list, the one whose heading announces its length ("8 leviers"
    over 8 items) wins, then the longest, then the first document.
    """
    lists: dict[tuple[str, tuple[str, ...]], dict[int, list[Chunk]]] = {}
    for chunk in chunks:
        if chunk.list_position is None or not chunk.list_length or not is_lever_heading(chunk.heading):
            continue
        items = lists.setdefault((chunk.doc_id, tuple(chunk.breadcrumb)), {})
        items.setdefault(chunk.list_position, []).append(chunk)
    if not lists:
        return []

    def preference(key: tuple[str, tuple[str, ...]]) -> tuple[bool, int]:
        announced = {int(n) for n in _NUMBER.findall(key[1][-1])}
        return (len(lists[key]) in announced, len(lists[key]))

    best = max(sorted(lists), key=preference)  # sorted: ties go to the first document
    items = lists[best]
    count = len(items)
    return [
        Lever(position=position, count=count, chunks=tuple(sorted(items[position], key=lambda c: c.start)))
        for position in sorted(items)
    ]


def profile_query(territory: Territory, stage: Stage) -> str:
    """The search query built from the form's answers."""
    return f"Leviers des collectivités pour un PTCE {TERRITORY_TERMS[territory]} ; {STAGE_TERMS[stage]}"


def rank_levers(levers: Sequence[Lever], hits: Sequence[Hit]) -> list[RankedLever]:
    """Levers by their best fused score in `hits`; levers the search missed follow in study order."""
    score_of: dict[str, float] = {h.chunk.chunk_id: h.score for h in hits}
    scored = [(max((score_of.get(cid, 0.0) for cid in lever.chunk_ids), default=0.0), lever) for lever in levers]
    scored.sort(key=lambda pair: (-pair[0], pair[1].position))
    return [RankedLever(lever=lever, score=score, rank=i) for i, (score, lever) in enumerate(scored, start=1)]


def other_passages(hits: Sequence[Hit], levers: Sequence[Lever], limit: int) -> list[Hit]:
    """The best hits that are not a lever themselves."""
    lever_ids = {cid for lever in levers for cid in lever.chunk_ids}
    return [h for h in hits if h.chunk.chunk_id not in lever_ids][:limit]


def recommend(
    assistant: Corpus, territory: Territory, stage: Stage, passages: int = 3, max_candidates: int = 200
) -> Recommendation:
    """Rank the corpus's levers and passages for a territory and a stage of development."""
    levers = find_levers(assistant.index.chunks)
    query = profile_query(territory, stage)
    k = min(len(assistant.index.chunks), max_candidates) or 1
    hits = assistant.search(query, k=k).hits
    return Recommendation(
        query=query, levers=rank_levers(levers, hits), passages=other_passages(hits, levers, passages)
    )


def related_passages(assistant: Corpus, lever: Lever, levers: Sequence[Lever], limit: int = 3) -> list[Hit]:
    """Passages on the collectivités' roles and rural specifics that relate to a lever."""
    hits = assistant.search(f"{lever.text} {RELATED_TERMS}", k=limit + len(levers)).hits
    return other_passages(hits, levers, limit)


def lever_question(lever: Lever) -> str:
    """The chat question a « Poser une question sur ce levier » button asks."""
    return f"Que dit l'étude sur le levier {lever.position} sur {lever.count} : « {lever.text} » ?"
