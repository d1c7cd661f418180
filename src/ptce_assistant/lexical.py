"""French analyser shared by the BM25 index, the answerability gate and the verifier."""

from __future__ import annotations

import math
from functools import lru_cache

import Stemmer
from bm25s.stopwords import STOPWORDS_FRENCH

from ptce_assistant.text import strip_accents, words
from ptce_assistant.wordlists import word_list

# The word lists and their provenance are data: src/ptce_assistant/data/lexicon.toml.
STOPWORDS: frozenset[str] = frozenset(strip_accents(w) for w in STOPWORDS_FRENCH) | word_list("stopwords")
# Words of the question itself (how it is asked), not of what it is about: ignored by the gate.
QUESTION_WORDS: frozenset[str] = word_list("question_words")


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("french")


def french_terms(text: str) -> list[str]:
    """Index terms: words without stop words, stemmed with Snowball French (accents stripped first)."""
    kept = [w for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
    return list(_stemmer().stemWords(kept))


# Capitalised in English prose without being names of the corpus.
ENGLISH_CAPITALISED = word_list("english_capitalised")
# Common nouns written with a capital by convention (l'État, the State): not names.
CAPITALISED_NOUNS = word_list("capitalised_nouns")


def bm25_idf(document_frequency: int, documents: int) -> float:
    """BM25's inverse document frequency (a term absent from the corpus weighs the most)."""
    return math.log(1.0 + (documents - document_frequency + 0.5) / (document_frequency + 0.5))


_ENGLISH = word_list("english_words")
_FRENCH = word_list("french_words")


def detect_language(text: str) -> str:
    """'en' when English function words outnumber French ones, else 'fr' (the interface's language)."""
    tokens = words(text)
    english = sum(t in _ENGLISH for t in tokens)
    french = sum(t in _FRENCH for t in tokens)
    return "en" if english > french else "fr"
