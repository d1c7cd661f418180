"""The word lists (src/ptce_assistant/data/*.toml) copy no held-out or blind question, and say where they came from.

An entry's literal words are read from its regex (alternatives enumerated, `\\w*` a word prefix, `.{0,40}` a
break); no run of 3 of them may appear in a question of evals/heldout*.jsonl, unless the corpus itself uses
those 3 words (then the entry speaks the study's vocabulary, as a question about it does). The test split's
questions are read here only: a failure names the entry and the case, never that split's question.
"""

from __future__ import annotations

import itertools
import json
import re
import re._constants as sre_constants
import re._parser as sre_parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ptce_assistant import wordlists
from ptce_assistant.text import strip_accents

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = sorted((ROOT / "evals").glob("heldout*.jsonl"))
TEST_SPLIT = "heldout-blind-6"  # never shown: see the module docstring
PHRASE = 3
_GAP = "\x00"  # where a pattern allows any text between two words
_TOKEN = re.compile(r"[^\W_]+(?:-[^\W_]+)*\*?|\*")
# Names of the field the study is about (the corpus says "ESS" and "PTCE"): any question about it may use them.
FIELD_NAMES = (
    "economie sociale et solidaire",
    "social and solidarity economy",
    "pole de cooperation",
    "poles de cooperation",
)
# Overlaps found and judged not to be copies: the entry is older than the split that shares its words.
KNOWN_OVERLAPS = {
    # 62ee17f (2026-11-26, wording of dev-033); heldout-blind-3 was written on 2026-12-03.
    ("bureau a l.autre", "blind3-013"): "bureau a l autre",
    # The same entry; heldout-blind-6 was written on 2026-12-04 (session 8), the idiom « d'un bureau à l'autre ».
    ("bureau a l.autre", "blind6-007"): "bureau a l autre",
    # 2ff9f92 (2026-11-26 11:17, from dev-069); heldout-blind-2 was written on 2026-11-26 at 14:15.
    (r"\boublie (le|les) (document|corpus|texte)", "blind2-040"): "oublie le corpus",
}


@dataclass(frozen=True)
class Entry:
    """One data-file entry as the test sees it: a label, its provenance and its regexes."""

    label: str
    source: str
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class Question:
    split: str
    case_id: str
    tokens: tuple[str, ...]


def shipped_entries() -> list[Entry]:
    """Every entry of the three data files."""
    entries = [Entry(f"thesaurus → {s.adds}", s.source, s.terms) for s in wordlists.synonyms()]
    entries += [
        Entry(f"{g.name} ({g.source})", g.source, tuple(map(re.escape, g.words))) for g in wordlists.word_groups()
    ]
    entries += [Entry(f"{p.name} ({p.source})", p.source, p.patterns) for p in wordlists.phrasings()]
    return entries


def _tokens(text: str) -> tuple[str, ...]:
    """Accent-free lower-case words; an apostrophe separates words, a hyphen joins them ("cite-t-elle")."""
    return tuple(_TOKEN.findall(strip_accents(text.lower()).replace("'", " ").replace("’", " ")))


def _expand(parsed: Iterable[tuple[object, object]]) -> Iterator[str]:
    """Every literal reading of a parsed regex: `\\w*` becomes a prefix mark, `.{m,n}` a gap."""
    parts: list[list[str]] = []
    for op, av in parsed:
        if op is sre_constants.LITERAL:
            parts.append([chr(av)])  # type: ignore[arg-type]
        elif op is sre_constants.ANY:
            parts.append([" "])
        elif op is sre_constants.AT:
            parts.append([""])
        elif op is sre_constants.IN:
            items = list(av)  # type: ignore[call-overload]
            chars = [" " if c in "- " else c for c in (chr(v) for o, v in items if o is sre_constants.LITERAL)]
            spaces = [" " for o, v in items if o is sre_constants.CATEGORY and v is sre_constants.CATEGORY_SPACE]
            parts.append(chars + spaces or ["*"])
        elif op is sre_constants.BRANCH:
            parts.append([s for branch in av[1] for s in _expand(branch)])  # type: ignore[index]
        elif op is sre_constants.SUBPATTERN:
            parts.append(list(_expand(av[-1])))  # type: ignore[index]
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            low, _high, sub = av  # type: ignore[misc]
            inner = list(_expand(sub))
            if all(o is sre_constants.ANY for o, _ in sub):
                parts.append([_GAP])
            elif inner in (["*"], [" "]):  # \w* or \s+
                parts.append(inner)
            else:
                parts.append(([""] if low == 0 else []) + inner)
        else:
            parts.append([_GAP])
    for combination in itertools.product(*parts):
        yield "".join(combination)


def literal_phrases(pattern: str) -> set[tuple[str, ...]]:
    """The word runs a regex can match, without gaps (`\\w*` kept as a trailing '*': a prefix)."""
    phrases: set[tuple[str, ...]] = set()
    for reading in _expand(sre_parse.parse(pattern)):
        for segment in reading.split(_GAP):
            words = _tokens(re.sub(r"\*", "* ", segment))
            # A whole word left open (`\w+`) is no literal word: it breaks the phrase.
            run: list[str] = []
            for word in (*words, "*"):
                if word != "*":
                    run.append(word)
                elif run:
                    phrases.add(tuple(run))
                    run = []
    return phrases


def _matches(window: tuple[str, ...], tokens: tuple[str, ...], at: int) -> bool:
    for word, token in zip(window, tokens[at : at + len(window)], strict=True):
        if not (token.startswith(word[:-1]) if word.endswith("*") else token == word):
            return False
    return True


def _occurs(window: tuple[str, ...], tokens: tuple[str, ...]) -> bool:
    return any(_matches(window, tokens, at) for at in range(len(tokens) - len(window) + 1))


def copies(
    entries: Iterable[Entry], questions: Iterable[Question], corpus: tuple[str, ...]
) -> dict[tuple[str, str], str]:
    """(pattern, case id) -> the words copied, for each run of 3 words of an entry found in a question.

    Runs the corpus or a field name also uses are the study's vocabulary, not a copy.
    """
    questions = list(questions)
    vocabulary = [corpus, *(_tokens(name) for name in FIELD_NAMES)]
    found: dict[tuple[str, str], str] = {}
    for entry in entries:
        for pattern in entry.patterns:
            for phrase in literal_phrases(pattern):
                for at in range(len(phrase) - PHRASE + 1):
                    window = phrase[at : at + PHRASE]
                    if any(_occurs(window, text) for text in vocabulary):
                        continue
                    for q in questions:
                        if _occurs(window, q.tokens) and (pattern, q.case_id) not in found:
                            words = "(a question of the test split)" if q.split == TEST_SPLIT else " ".join(window)
                            found[(pattern, q.case_id)] = words
    return found


def case_sources(entries: Iterable[Entry], held_out_ids: set[str]) -> list[str]:
    """Entries tagged as coming from the failure of one of `held_out_ids`."""
    tagged = ((e, e.source.removeprefix("from failure of case ")) for e in entries)
    return [
        f"{e.label}: {case}"
        for e, case in tagged
        if e.source.startswith("from failure of case ") and case in held_out_ids
    ]


def _questions() -> list[Question]:
    questions = []
    for path in HELDOUT:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                case = json.loads(line)
                questions.append(Question(path.stem, case["id"], _tokens(case["question"])))
    return questions


def _corpus() -> tuple[str, ...]:
    return tuple(
        t for path in sorted((ROOT / "corpus").glob("*.txt")) for t in _tokens(path.read_text(encoding="utf-8"))
    )


def test_held_out_splits_are_all_read() -> None:
    assert {p.stem for p in HELDOUT} >= {
        *("heldout", "heldout-blind", "heldout-blind-2", "heldout-blind-3", "heldout-blind-4", "heldout-blind-5"),
        TEST_SPLIT,
    }
    assert all(q.tokens for q in _questions())


def test_no_entry_copies_a_phrase_of_a_held_out_or_blind_question() -> None:
    found = copies(shipped_entries(), _questions(), _corpus())
    assert {key: words for key, words in found.items() if key not in KNOWN_OVERLAPS} == {}
    assert found.keys() >= KNOWN_OVERLAPS.keys()  # a stale exemption is removed


def test_no_entry_comes_from_the_test_split() -> None:
    """An entry may come from a dev or validation failure (fit data, README « Jeux d'évaluation »), never the test's."""
    questions = _questions()
    test_ids = {q.case_id for q in questions if q.split == TEST_SPLIT}
    fit_ids = {q.case_id for q in questions if q.split != TEST_SPLIT} | {
        json.loads(line)["id"] for line in (ROOT / "evals" / "dev.jsonl").read_text().splitlines() if line.strip()
    }
    entries = shipped_entries()
    assert case_sources(entries, test_ids) == []
    cases = {e.source.removeprefix("from failure of case ") for e in entries if e.source.startswith("from failure")}
    assert cases and cases <= fit_ids  # the cases named do exist


def test_every_entry_has_a_known_source_and_evidence() -> None:
    for entry in [*wordlists.synonyms(), *wordlists.word_groups(), *wordlists.phrasings()]:
        assert wordlists.SOURCE.fullmatch(entry.source) and entry.evidence
    with pytest.raises(ValueError, match="not one of"):
        wordlists.Synonym(source="from the blind split", evidence="x", terms=("a",), adds="b")


def test_literal_phrases_read_the_regex_forms_the_lists_use() -> None:
    assert literal_phrases(r"too much (power|control)") == {("too", "much", "power"), ("too", "much", "control")}
    assert ("economie", "sociale", "et", "solidaire") in literal_phrases(r"economie sociale( et solidaire)?")
    assert ("bureau", "a", "l", "autre") in literal_phrases(r"bureau a l.autre")
    assert literal_phrases(r"(ignore|forget)\b.{0,40}\b(rule)") == {("ignore",), ("forget",), ("rule",)}
    assert literal_phrases(r"\b(tes|your)\s+(\w+\s+)?(regles?)\b") >= {("tes", "regle"), ("your",), ("regles",)}
    assert literal_phrases(r"financ\w* publics?") == {("financ*", "public"), ("financ*", "publics")}
    assert literal_phrases(r"cite-t-elle") == {("cite-t-elle",)}


# A question of a validation split (visible in committed reports) planted into a temporary list.
_PLANTED = next(q for q in _questions() if q.split == "heldout" and len(q.tokens) >= 6)


def _planted(kind: str) -> Entry:
    words = _PLANTED.tokens[1:5]
    if kind == "thesaurus term":
        return Entry("planted", "domain vocabulary", (" ".join(words),))
    if kind == "regex with stems":
        return Entry("planted", "domain vocabulary", ("jailbreak|" + r"\s+".join(w[:4] + r"\w*" for w in words),))
    if kind == "word list":
        return Entry("planted", "domain vocabulary", (*map(re.escape, words), re.escape(" ".join(words))))
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["thesaurus term", "regex with stems", "word list"])
def test_a_planted_copy_of_a_held_out_question_is_caught(kind: str) -> None:
    planted = _planted(kind)
    found = copies([*shipped_entries(), planted], _questions(), _corpus())
    new = {key for key in found if key not in KNOWN_OVERLAPS}
    assert new and all(pattern in planted.patterns for pattern, _ in new)
    assert any(case_id == _PLANTED.case_id for _, case_id in new)


def test_single_words_of_a_question_are_not_a_copy() -> None:
    entries = [Entry("planted", "domain vocabulary", tuple(re.escape(w) for w in _PLANTED.tokens))]
    assert copies(entries, _questions(), _corpus()) == {}


def test_a_planted_test_case_source_is_caught() -> None:
    questions = _questions()
    test_ids = {q.case_id for q in questions if q.split == TEST_SPLIT}
    case_id = min(test_ids)
    planted = Entry("planted", f"from failure of case {case_id}", ("x",))
    assert case_sources([*shipped_entries(), planted], test_ids) == [f"planted: {case_id}"]
