"""Verifier of generated answers: keeps only sentences that cite a passage which supports them.

The local model cites badly and sometimes invents (see shared/notes/offline-models.md), so nothing
it writes reaches users unchecked: every kept sentence gets a verbatim quote of the passage it cites.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from ptce_assistant.answering.answer import Citation, Dropped, Verification
from ptce_assistant.answering.citations import cite, markdown_literal
from ptce_assistant.answering.generative import NO_ANSWER
from ptce_assistant.chunking import Chunk
from ptce_assistant.config import Lang
from ptce_assistant.lexical import ENGLISH_CAPITALISED, STOPWORDS, french_terms
from ptce_assistant.text import sentence_spans, strip_accents, words
from ptce_assistant.wordlists import word_list

# French sentences: at least half of their content terms (stemmed) must occur in the cited passages.
# On hand-made probes, faithful paraphrases by the local model scored 0.6-1.0 and answers built on
# a wrong passage or on outside knowledge 0.0-0.4; half tolerates connectives like "jouent un rôle".
MIN_TERM_OVERLAP = 0.5
# English sentences cannot share stems with French passages: instead, at least a third of their long
# words must share a 5-letter prefix with a passage word (cognates: development/développement,
# cooperation/coopération, territorial/territoriaux). A relevance check only; numbers and names
# are still checked exactly.
MIN_COGNATE_OVERLAP = 1 / 3
_COGNATE_PREFIX = 5

# "[1]", "[1, 2]", "[1][2]", "[passage 1]".
_MARKER = re.compile(r"\[\s*(?:passages?\s*)?(\d+(?:\s*[,;]\s*\d+)*)\s*\]", re.IGNORECASE)
# Markers written after the full stop ("... rôle. [1]") belong to the sentence before them.
_MARKERS_AFTER_END = re.compile(r"([.!?…]+)((?:\s*\[\s*(?:passages?\s*)?\d+(?:\s*[,;]\s*\d+)*\s*\])+)", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_END = re.compile(r"^(.*?)\s*([.!?…]*)$", re.DOTALL)
_DIGITS = re.compile(r"\d+")
_NAME = re.compile(r"[^\W\d_]+")
# A capitalised word after these is not a name (quotes, list intros).
_NAME_OPENERS = frozenset(':«"“(')
# Digits the passages may spell out ("huit leviers", "une cinquantaine d'initiatives").
_NUMBER_WORDS: dict[str, tuple[str, ...]] = {
    "1": ("un", "une", "premier", "premiere", "one", "first"),
    "2": ("deux", "second", "seconde", "deuxieme", "two"),
    "3": ("trois", "troisieme", "three"),
    "4": ("quatre", "quatrieme", "four"),
    "5": ("cinq", "cinquieme", "five"),
    "6": ("six", "sixieme"),
    "7": ("sept", "septieme", "seven"),
    "8": ("huit", "huitieme", "eight"),
    "9": ("neuf", "neuvieme", "nine"),
    "10": ("dix", "dizaine", "ten"),
    "12": ("douze", "douzaine"),
    "15": ("quinze", "quinzaine"),
    "20": ("vingt", "vingtaine"),
    "30": ("trente", "trentaine"),
    "40": ("quarante", "quarantaine"),
    "50": ("cinquante", "cinquantaine"),
    "100": ("cent", "centaine"),
    "1000": ("mille", "millier"),
}
# Long English function words that would otherwise count as content in the cognate check (data/lexicon.toml).
_ENGLISH_STOPWORDS = word_list("english_stopwords")
# fmt: on
_COGNATE_STOPWORDS = STOPWORDS | _ENGLISH_STOPWORDS


class VerifiedText(BaseModel):
    """The verified answer: text with renumbered [n], its citations, and what was checked/dropped."""

    text: str = Field(description="Markdown; '' when no sentence survived.")
    citations: list[Citation] = Field(default_factory=list)
    verification: Verification = Field(default_factory=Verification)

    @property
    def is_empty(self) -> bool:
        """Nothing survived: the caller should fall back to the extractive answer."""
        return not self.text


@dataclass
class _Sentence:
    raw: str
    body: str  # without markers or final punctuation
    end: str
    markers: list[int]
    line: int
    bullet: str


@dataclass
class _Support:
    """Vocabulary of the cited passages, computed once per passage set."""

    terms: set[str]
    words: set[str]
    digits: set[str]
    prefixes: set[str] = field(default_factory=set)


def _support(chunks: Sequence[Chunk]) -> _Support:
    # Content terms come from the passage and its own heading (a bullet under "Rôle des collectivités"
    # is about collectivités); names and numbers may also come from the title and breadcrumb, where
    # acronyms like PTCE are spelled out. The title is not used for terms: it would support any
    # sentence about the corpus' subject.
    claimed = "\n".join(f"{c.heading}\n{c.text}" for c in chunks)
    context = "\n".join(f"{c.title}\n{' '.join(c.breadcrumb)}\n{c.text}" for c in chunks)
    all_words = set(words(context))
    return _Support(
        terms=set(french_terms(claimed)),
        words=all_words,
        digits=set(_DIGITS.findall(context)),
        prefixes={w[:_COGNATE_PREFIX] for w in words(claimed) if len(w) >= _COGNATE_PREFIX},
    )


def _split(text: str) -> list[_Sentence]:
    """Sentences of the draft with their markers, line by line (bullets kept apart)."""
    sentences: list[_Sentence] = []
    for line_no, line in enumerate(text.splitlines()):
        bullet_match = _BULLET.match(line)
        bullet = "- " if bullet_match else ""
        rest = line[bullet_match.end() :] if bullet_match else line
        rest = _MARKERS_AFTER_END.sub(lambda m: f"{m[2]}{m[1]}", rest)
        for start, stop in sentence_spans(rest):
            raw = rest[start:stop]
            markers = [int(n) for m in _MARKER.finditer(raw) for n in re.split(r"\s*[,;]\s*", m[1])]
            stripped = " ".join(_MARKER.sub(" ", raw).split())
            stripped = re.sub(r"\s+([.,;:!?…)])", r"\1", stripped)
            end_match = _END.match(stripped)
            assert end_match is not None  # the pattern matches any string
            sentences.append(_Sentence(raw, end_match[1], end_match[2], markers, line_no, bullet))
    return sentences


def _cognate_hits(sentence_words: Sequence[str], prefixes: set[str]) -> list[str]:
    return [w for w in sentence_words if w[:_COGNATE_PREFIX] in prefixes]


def _long_words(text: str) -> list[str]:
    return [w for w in words(text) if len(w) >= _COGNATE_PREFIX and w not in _COGNATE_STOPWORDS]


def _unsupported_reason(body: str, support: _Support, lang: Lang) -> Dropped | None:
    """Why `body` is not supported by the cited passages, or None if it is."""
    for number in _DIGITS.findall(body):
        spelled = _NUMBER_WORDS.get(number, ())
        if number not in support.digits and not any(w in support.words for w in spelled):
            return Dropped(sentence=body, reason="unsupported number", detail=number)
    for m in _NAME.finditer(body):
        name = m.group()
        before = body[: m.start()].rstrip(" *_")
        if not name[0].isupper() or len(name) < 2 or not before or before[-1] in _NAME_OPENERS:
            continue
        folded = strip_accents(name.lower())
        if folded in STOPWORDS or folded in support.words or set(french_terms(name)) & support.terms:
            continue
        if lang == "en" and (folded in ENGLISH_CAPITALISED or folded[:_COGNATE_PREFIX] in support.prefixes):
            continue
        return Dropped(sentence=body, reason="unknown name", detail=name)
    terms = set(french_terms(body))
    if terms and len(terms & support.terms) / len(terms) >= MIN_TERM_OVERLAP:
        return None
    if lang == "en":
        long_words = _long_words(body)
        hits = _cognate_hits(long_words, support.prefixes)
        if hits and len(hits) / len(long_words) >= MIN_COGNATE_OVERLAP:
            return None
    return Dropped(sentence=body, reason="unsupported")


def _match_score(body: str, span_text: str, lang: Lang) -> int:
    """How many of the sentence's terms (or, in English, cognates) the span contains."""
    score = len(set(french_terms(body)) & set(french_terms(span_text)))
    if lang == "en":
        prefixes = {w[:_COGNATE_PREFIX] for w in words(span_text) if len(w) >= _COGNATE_PREFIX}
        score = max(score, len(set(_cognate_hits(_long_words(body), prefixes))))
    return score


def _best_quote(body: str, chunk: Chunk, lang: Lang) -> tuple[int, int, int]:
    """(score, start, end) of the sentence of chunk.text that best supports `body`.

    Two adjacent sentences are quoted only when together they match at least two more terms:
    a long quote that adds one generic word ("collectivités") helps nobody check the claim.
    """
    spans = sentence_spans(chunk.text) or [(0, len(chunk.text))]
    scores = [_match_score(body, chunk.text[s:e], lang) for s, e in spans]
    # max() keeps the first of equal scores: the earliest sentence.
    i = max(range(len(spans)), key=lambda j: scores[j])
    best = (scores[i], *spans[i])
    for a, b in ((i - 1, i), (i, i + 1)):
        if a >= 0 and b < len(spans):
            start, end = spans[a][0], spans[b][1]
            score = _match_score(body, chunk.text[start:end], lang)
            if score >= best[0] + 2:
                best = (score, start, end)
    return best


def verify_answer(text: str, passages: Sequence[Chunk], lang: Lang = "fr", keep_numbers: bool = False) -> VerifiedText:
    """Check a generated draft against the passages it was given, and keep only what they support.

    Contract for the caller (the Assistant facade):
    - `passages` are the chunks given to the model, in the same order: marker [n] means passages[n-1].
    - Each sentence of `text` is kept only if it carries at least one [n] with 1 <= n <= len(passages)
      and the cited passages support it (content-term overlap, numbers, names; see the constants).
      Dropped sentences are listed in `verification.dropped` with a reason: "no citation",
      "dangling citation [9]", "unsupported number 2015", "unknown name X", "unsupported",
      "no answer in passages" (the model's fixed refusal sentence).
    - Kept sentences have their markers renumbered 1..m in order of first use; citation n quotes the
      sentence(s) of the passage that best support it (verbatim substring of chunk.text, offsets in the
      document). Markers of the draft never reach the output unrenumbered.
    - If nothing survives, `text` is "" and `citations` is empty (`is_empty`): fall back to the
      extractive answer and set `verification.fallback`.
    - With `keep_numbers`, kept sentences keep the passage numbers they cite and no citation is made:
      the passages are quotes the caller already cites under those numbers.
    """
    verification = Verification()
    numbers: dict[tuple[int, int, int], int] = {}
    citations: list[Citation] = []
    kept: list[tuple[_Sentence, list[int]]] = []
    supports: dict[tuple[int, ...], _Support] = {}
    refusals = {strip_accents(s.rstrip(".").casefold()) for s in NO_ANSWER.values()}

    for sentence in _split(text):
        if not sentence.body:
            continue  # a stray marker or punctuation on its own line
        verification.checked_sentences += 1
        dropped: Dropped | None = None
        cited = sorted(set(sentence.markers))
        if strip_accents(sentence.body.strip('«»" ').rstrip(".").casefold()) in refusals:
            dropped = Dropped(sentence=sentence.raw, reason="no answer in passages")
        elif not cited:
            dropped = Dropped(sentence=sentence.raw, reason="no citation")
        elif dangling := [n for n in cited if not 1 <= n <= len(passages)]:
            dropped = Dropped(sentence=sentence.raw, reason="dangling citation", detail=f"[{dangling[0]}]")
        else:
            key = tuple(cited)
            if key not in supports:
                supports[key] = _support([passages[n - 1] for n in cited])
            unsupported = _unsupported_reason(sentence.body, supports[key], lang)
            dropped = unsupported.model_copy(update={"sentence": sentence.raw}) if unsupported else None
        if dropped is not None:
            verification.dropped.append(dropped)
            continue

        if keep_numbers:
            kept.append((sentence, cited))
            continue
        quotes = [(n, *_best_quote(sentence.body, passages[n - 1], lang)) for n in sentence.markers]
        # Cite only the passages that contribute something, unless none measurably does (English).
        useful = [q for q in quotes if q[1] > 0] or quotes
        new_numbers: list[int] = []
        for n, _score, start, end in useful:
            quote_key = (n, start, end)
            if quote_key not in numbers:
                numbers[quote_key] = len(numbers) + 1
                citations.append(cite(numbers[quote_key], passages[n - 1], start, end))
            if numbers[quote_key] not in new_numbers:
                new_numbers.append(numbers[quote_key])
        kept.append((sentence, new_numbers))

    verification.kept_sentences = len(kept)
    return VerifiedText(text=_render(kept), citations=citations, verification=verification)


def _render(kept: Sequence[tuple[_Sentence, list[int]]]) -> str:
    """Markdown: sentences of one line joined by spaces; bullets on their own lines, paragraphs apart."""
    lines: dict[int, tuple[str, list[str]]] = {}
    for sentence, numbers in kept:
        markers = "".join(f"[{n}]" for n in numbers)
        bullet, parts = lines.setdefault(sentence.line, (sentence.bullet, []))
        # The model's words are shown literally: no HTML, image, link or look-alike [n] from it.
        parts.append(f"{markdown_literal(sentence.body)} {markers}{sentence.end or '.'}")
    out = ""
    for bullet, parts in lines.values():
        line = bullet + " ".join(parts)
        out += line if not out else ("\n" if bullet else "\n\n") + line
    return out
