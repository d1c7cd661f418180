"""French analyser shared by the BM25 index, the answerability gate and the verifier."""

from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache

import Stemmer
from bm25s.stopwords import STOPWORDS_FRENCH

_ELISION = re.compile(r"\b(?:[ldjmnstc]|qu|jusqu|lorsqu|puisqu|quoiqu)['’]", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def strip_accents(text: str) -> str:
    """'collectivités' -> 'collectivites' (users often type without accents)."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


STOPWORDS: frozenset[str] = frozenset(strip_accents(w) for w in STOPWORDS_FRENCH) | frozenset(
    {
        "etre",
        "avoir",
        "fait",
        "faire",
        "peut",
        "peuvent",
        "quel",
        "quelle",
        "quels",
        "quelles",
        "comment",
        "pourquoi",
        "quoi",
        "dont",
        "selon",
        "etude",
        "y",
        "a",
        "the",
        "of",
        "and",
        "what",
        "how",
        "is",
        "are",
        "do",
        "does",
        "in",
        "to",
        "for",
        "on",
        "which",
        "can",
        "it",
    }
)
# Words of the question itself (how it is asked), not of what it is about: ignored by the gate.
QUESTION_WORDS: frozenset[str] = frozenset(
    {
        "combien",
        "recommande",
        "recommandent",
        "recommander",
        "doit",
        "doivent",
        "peux",
        "pouvez",
        "font",
        "type",
        "types",
        "jouer",
        "jouent",
        "joue",
        "cite",
        "citer",
        "cite-t-elle",
        "exemple",
        "exemples",
        "dit",
        "dire",
        "parle",
        "explique",
        "expliquer",
        "detailler",
        "detaille",
        "donner",
        "donne",
        "quand",
        "ou",
        "est-ce",
        "lesquels",
        "lesquelles",
        "lequel",
        "laquelle",
        "faut",
        "faudrait",
        "il",
        "elles",
        "ils",
        "devrait",
        "devraient",
        "pourrait",
        "met",
        "avant",
        "sont",
        "ete",
        "aujourd",
        "hui",
        "element",
        "why",
        "what",
        "how",
        "does",
        "did",
        "say",
        "says",
        "said",
        "study",
        "which",
        "who",
        "where",
        "when",
        "should",
        "could",
        "would",
        "there",
        "their",
        "about",
        "with",
        "have",
        "has",
        "be",
        "that",
        "this",
        "many",
        "much",
        "make",
        "makes",
        "according",
        "mean",
        "means",
        "tell",
        "me",
        "one",
        "ones",
        "any",
        "particularly",
        "from",
        "into",
        "by",
        "or",
        "as",
        "at",
        "are",
        "was",
        "were",
        "its",
        "do",
        "an",
    }
)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("french")


def words(text: str) -> list[str]:
    """Lower-cased, accent-free words with French elisions removed (l', d', qu'...)."""
    text = _ELISION.sub(" ", text.lower())
    return _WORD.findall(strip_accents(text))


def french_terms(text: str) -> list[str]:
    """Index terms: words without stop words, stemmed with Snowball French (accents stripped first)."""
    kept = [w for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
    return list(_stemmer().stemWords(kept))


# Capitalised in English prose without being names of the corpus.
ENGLISH_CAPITALISED = frozenset(
    {
        *("french", "france", "english", "i"),
        *("january", "february", "march", "april", "may", "june", "july", "august"),
        *("september", "october", "november", "december"),
        *("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
    }
)


def bm25_idf(document_frequency: int, documents: int) -> float:
    """BM25's inverse document frequency (a term absent from the corpus weighs the most)."""
    return math.log(1.0 + (documents - document_frequency + 0.5) / (document_frequency + 0.5))


_ENGLISH = frozenset(
    {
        "the",
        "what",
        "which",
        "how",
        "why",
        "who",
        "is",
        "are",
        "does",
        "do",
        "can",
        "should",
        "of",
        "and",
        "to",
        "in",
        "for",
        "with",
        "about",
        "local",
        "authorities",
        "study",
        "say",
        "says",
        "their",
        "they",
        "role",
        "levers",
        "lever",
        "there",
        "this",
        "that",
        "an",
        "on",
    }
)
_FRENCH = frozenset(
    {
        "le",
        "la",
        "les",
        "des",
        "du",
        "de",
        "un",
        "une",
        "est",
        "sont",
        "quel",
        "quelle",
        "quels",
        "quelles",
        "comment",
        "pourquoi",
        "et",
        "en",
        "dans",
        "pour",
        "sur",
        "que",
        "qui",
        "au",
        "aux",
        "ce",
        "ces",
        "il",
        "elle",
        "ils",
        "on",
        "peut",
        "selon",
        "etude",
        "collectivites",
    }
)


def detect_language(text: str) -> str:
    """'en' when English function words outnumber French ones, else 'fr' (the interface's language)."""
    tokens = words(text)
    english = sum(t in _ENGLISH for t in tokens)
    french = sum(t in _FRENCH for t in tokens)
    return "en" if english > french else "fr"
