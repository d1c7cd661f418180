"""Text primitives shared by every layer: sentences, accents, words (a leaf: it imports nothing of the package)."""

from __future__ import annotations

import re
import unicodedata

# A sentence ends at . ! ? or … followed by white space and a capital, a quote or a bullet.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[«\"A-ZÀ-ÖØ-Þ•])")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each sentence of `text`, trimmed of surrounding white space."""
    spans: list[tuple[int, int]] = []
    cursor = 0
    for boundary in [*(m.start() for m in _SENTENCE_END.finditer(text)), len(text)]:
        piece = text[cursor:boundary]
        lead = len(piece) - len(piece.lstrip())
        start, end = cursor + lead, cursor + len(piece.rstrip())
        if end > start:
            spans.append((start, end))
        cursor = boundary
    return spans


_ELISION = re.compile(r"\b(?:[ldjmnstc]|qu|jusqu|lorsqu|puisqu|quoiqu)['’]", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def strip_accents(text: str) -> str:
    """'collectivités' -> 'collectivites' (users often type without accents)."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def words(text: str) -> list[str]:
    """Lower-cased, accent-free words with French elisions removed (l', d', qu'...)."""
    text = _ELISION.sub(" ", text.lower())
    return _WORD.findall(strip_accents(text))
