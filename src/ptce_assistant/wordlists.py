"""The domain word lists, read from the package's data files (src/ptce_assistant/data/*.toml).

Every entry says where it came from (`source`) and on what evidence (`evidence`: the commit that
introduced it and what the history says), so that a word taken from an eval case is visible as such.
tests/test_wordlists.py fails when an entry copies a phrase of a held-out or blind question.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

ListName = Literal[
    "stopwords",
    "question_words",
    "english_words",
    "french_words",
    "english_capitalised",
    "capitalised_nouns",
    "english_stopwords",
]
RefusalName = Literal["injection", "chitchat", "off_topic"]
SOURCE = re.compile(r"domain vocabulary|from failure of case [a-z0-9-]+|from issue \d+|unknown")


@dataclass(frozen=True)
class Provenance:
    """Where an entry came from: one of the `SOURCE` forms, and the history that says so."""

    source: str
    evidence: str

    def __post_init__(self) -> None:
        if not SOURCE.fullmatch(self.source):
            raise ValueError(f"source {self.source!r} is not one of {SOURCE.pattern}")


@dataclass(frozen=True)
class Synonym(Provenance):
    """Everyday terms (accent-free regex alternatives) and the study's words added to a query for them."""

    terms: tuple[str, ...]
    adds: str


@dataclass(frozen=True)
class WordGroup(Provenance):
    """Plain words of one list (`ListName`) that share a provenance."""

    name: ListName
    words: tuple[str, ...]


@dataclass(frozen=True)
class Phrasings(Provenance):
    """Regex alternatives of a refused request (`RefusalName`) that share a provenance."""

    name: RefusalName
    patterns: tuple[str, ...]


def _read(file: str) -> dict[str, Any]:
    return tomllib.loads((resources.files("ptce_assistant.data") / file).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def synonyms() -> tuple[Synonym, ...]:
    """The thesaurus, in the order its entries are tried (data/thesaurus.toml)."""
    return tuple(
        Synonym(source=e["source"], evidence=e["evidence"], terms=tuple(e["terms"]), adds=e["adds"])
        for e in _read("thesaurus.toml")["synonym"]
    )


@lru_cache(maxsize=1)
def word_groups() -> tuple[WordGroup, ...]:
    """Every group of the analyser's word lists (data/lexicon.toml)."""
    return tuple(
        WordGroup(source=e["source"], evidence=e["evidence"], name=e["name"], words=tuple(e["words"]))
        for e in _read("lexicon.toml")["list"]
    )


@lru_cache(maxsize=1)
def phrasings() -> tuple[Phrasings, ...]:
    """Every group of refused phrasings (data/refusals.toml)."""
    data = _read("refusals.toml")
    return tuple(
        Phrasings(source=e["source"], evidence=e["evidence"], name=name, patterns=tuple(e["patterns"]))
        for name in ("injection", "chitchat", "off_topic")
        for e in data[name]
    )


def word_list(name: ListName) -> frozenset[str]:
    """All the words of one list, whatever their provenance."""
    return frozenset(w for group in word_groups() if group.name == name for w in group.words)


def alternatives(name: RefusalName) -> str:
    """One refused request's phrasings as a single regex alternation, in file order."""
    return "|".join(p for group in phrasings() if group.name == name for p in group.patterns)
