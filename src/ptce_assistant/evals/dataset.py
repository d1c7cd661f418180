"""Evaluation cases (JSONL): schema, strict loader, corpus-aware validator and the hit rule."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ptce_assistant.audit import AuditLog
from ptce_assistant.config import Lang
from ptce_assistant.conversation import Turn
from ptce_assistant.errors import PtceError

MIN_QUOTE_CHARS = 40
MAX_QUOTE_CHARS = 250
COVERAGE_RATIO = 0.5

_WHITESPACE = re.compile(r"\s+")


class EvalCase(BaseModel):
    """A question with its expected evidence (verbatim corpus quotes) or none if unanswerable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: str
    question: str
    history: list[Turn] = Field(default_factory=list)
    answerable: bool
    expected_quotes: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    lang: Lang

    @field_validator("id", "question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


@dataclass(frozen=True)
class CaseProblem:
    """A defect of one line of an evaluation file."""

    line: int
    case_id: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line} [{self.case_id or '?'}]: {self.reason}"


def normalize_whitespace(text: str) -> str:
    """Collapse every run of whitespace (including non-breaking spaces) to one space."""
    return _WHITESPACE.sub(" ", text).strip()


def _longest_common_run(a: str, b: str) -> tuple[int, int, int]:
    """(start in a, start in b, length) of the longest common substring of a and b."""
    match = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return match.a, match.b, match.size


def covers(chunk_text: str, quote: str) -> bool:
    """Hit rule: the text shares a run of at least half the quote (whitespace-normalised).

    Equivalent to "longest common substring >= 50% of the quote": some window of the quote of
    that length occurs verbatim in the text (checked with C-speed substring searches).
    """
    needle = normalize_whitespace(quote)
    haystack = normalize_whitespace(chunk_text)
    if not needle:
        return False
    run = math.ceil(COVERAGE_RATIO * len(needle))
    return any(needle[start : start + run] in haystack for start in range(len(needle) - run + 1))


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers; unreadable files raise PtceError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PtceError(f"{path}: cannot read evaluation file ({exc})") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def _describe(error: Mapping[str, Any]) -> str:
    """A short human reason for one pydantic error."""
    loc = tuple(error["loc"])
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    value = error.get("input")
    if error["type"] == "missing":
        return f"missing field '{where}'"
    if error["type"] == "extra_forbidden":
        return f"unknown field '{where}'"
    if loc == ("lang",):
        return f"lang {value!r} is not 'fr' or 'en'"
    if loc == ("question",) and isinstance(value, str) and not value.strip():
        return "empty question"
    if len(loc) == 3 and loc[0] == "history" and loc[2] == "role":
        return f"history turn {int(loc[1]) + 1} has role {value!r}, expected 'user' or 'assistant'"
    return f"{where or 'case'}: {error['msg']}"


def _parse(line: str) -> tuple[EvalCase | None, str, list[str]]:
    """The case on a line, its id if readable, and the reasons it does not parse."""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, "", [f"invalid JSON: {exc.msg} (column {exc.colno})"]
    case_id = raw.get("id", "") if isinstance(raw, dict) else ""
    case_id = case_id if isinstance(case_id, str) else ""
    try:
        return EvalCase.model_validate(raw), case_id, []
    except ValidationError as exc:
        return None, case_id, [_describe(error) for error in exc.errors()]


def load_cases(path: Path) -> list[EvalCase]:
    """Read a JSONL evaluation file; the first bad line raises PtceError('file:line: reason')."""
    cases: list[EvalCase] = []
    for number, line in _numbered_lines(path):
        case, _, reasons = _parse(line)
        if case is None:
            raise PtceError(f"{path}:{number}: {'; '.join(reasons)}")
        cases.append(case)
    return cases


def _closest_snippet(quote: str, corpus_texts: Mapping[str, str]) -> tuple[str, str]:
    """The document and the corpus passage best aligned with a quote that is not verbatim."""
    best_doc, best_start, best_size = "", 0, 0
    for doc_id, text in corpus_texts.items():
        quote_start, text_start, size = _longest_common_run(quote, text)
        if size > best_size:
            best_doc, best_start, best_size = doc_id, text_start - quote_start, size
    if not best_size:
        return best_doc, ""
    text = corpus_texts[best_doc]
    start = max(0, best_start - 3)  # a little slack: replaced characters shift the alignment
    end = min(len(text), best_start + len(quote) + 3)
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    while end < len(text) and not text[end].isspace():
        end += 1
    return best_doc, normalize_whitespace(text[start:end])


def _quote_problems(quotes: list[str], corpus_texts: Mapping[str, str]) -> Iterator[str]:
    """Quotes that are too short/long or not verbatim substrings of any corpus document."""
    for index, quote in enumerate(quotes, start=1):
        if not MIN_QUOTE_CHARS <= len(quote) <= MAX_QUOTE_CHARS:
            bounds = f"{MIN_QUOTE_CHARS}-{MAX_QUOTE_CHARS}"
            yield f"quote {index} has {len(quote)} chars, expected {bounds}: {quote!r}"
        if not any(quote in text for text in corpus_texts.values()):
            doc_id, snippet = _closest_snippet(quote, corpus_texts)
            hint = f"; closest in {doc_id}: {snippet!r}" if snippet else ""
            yield f"quote {index} is not verbatim in the corpus: {quote!r}{hint}"


def _case_problems(case: EvalCase, corpus_texts: Mapping[str, str]) -> Iterator[str]:
    """Consistency of one parsed case: evidence, history shape and tags."""
    if case.answerable and not case.expected_quotes:
        yield "answerable case without expected_quotes"
    if not case.answerable and case.expected_quotes:
        yield "unanswerable case with expected_quotes"
    yield from _quote_problems(case.expected_quotes, corpus_texts)
    for index, turn in enumerate(case.history, start=1):
        expected_role = "user" if index % 2 else "assistant"
        if turn.role != expected_role:
            yield f"history turn {index} has role {turn.role!r}, expected {expected_role!r} (turns alternate)"
        if not turn.content.strip():
            yield f"history turn {index} is empty"
    if case.history and case.history[-1].role != "assistant":
        yield "history must end with an assistant turn"
    tags = set(case.tags)
    if ("followup" in tags) != bool(case.history):
        yield "tag 'followup' must be set exactly when there is a history"
    if ("en" in tags) != (case.lang == "en"):
        yield "tag 'en' must be set exactly when lang is 'en'"
    if ("out-of-corpus" in tags) == case.answerable:
        yield "tag 'out-of-corpus' must be set exactly when the case is unanswerable"


def validate_cases(path: Path, corpus_texts: Mapping[str, str]) -> list[CaseProblem]:
    """Every problem of an evaluation file, checked against the corpus {doc_id: text}."""
    problems: list[CaseProblem] = []
    first_line_of: dict[str, int] = {}
    for number, line in _numbered_lines(path):
        case, case_id, reasons = _parse(line)
        if case is not None:
            if case.id in first_line_of:
                reasons.append(f"duplicate id (first used on line {first_line_of[case.id]})")
            else:
                first_line_of[case.id] = number
            reasons.extend(_case_problems(case, corpus_texts))
        problems.extend(CaseProblem(number, case_id, reason) for reason in reasons)
    if not first_line_of and not problems:
        problems.append(CaseProblem(0, "", "no cases"))
    return problems


def cases_from_feedback(log: AuditLog) -> list[EvalCase]:
    """Down-rated turns of the audit log as draft eval cases, tagged for review (quotes left to the reviewer)."""
    cases = []
    for record in log.turns():
        if record["rating"] != "down":
            continue
        history = [Turn.model_validate(t) for t in record["history"]]
        tags = ["from-feedback", "needs-review"]
        tags += ["followup"] if history else []
        tags += ["out-of-corpus"] if record["abstained"] else []
        tags += ["en"] if record["lang"] == "en" else []
        cases.append(
            EvalCase(
                id=f"feedback-{record['id']}",
                question=record["question"],
                history=history,
                answerable=not record["abstained"],
                expected_quotes=[],
                tags=tags,
                lang=record["lang"],
            )
        )
    return cases
