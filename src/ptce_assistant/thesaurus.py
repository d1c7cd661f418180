"""A small French/English thesaurus of local-government and social-economy vocabulary.

Users ask with the words of their daily work ("la mairie", "des locaux", "local authorities"); the
study writes "collectivités", "immobilier et foncier". Expanding the query with the study's words
lets the lexical index meet them.
Each entry records where it came from (tests/test_wordlists.py: none copies a held-out question).
"""

from __future__ import annotations

import re

from ptce_assistant.text import strip_accents
from ptce_assistant.wordlists import synonyms

# Entries and their provenance are data: src/ptce_assistant/data/thesaurus.toml.
_COMPILED = [(re.compile(rf"\b(?:{'|'.join(entry.terms)})\b"), entry.adds) for entry in synonyms()]


def expansions(query: str) -> str:
    """The study's words for the domain terms a query uses (empty when none applies)."""
    plain = strip_accents(query.lower())
    extra: list[str] = []
    for pattern, words in _COMPILED:
        if pattern.search(plain) and words not in extra:
            extra.append(words)
    return " ".join(extra)
