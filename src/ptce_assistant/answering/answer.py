"""The records an answer is made of: citations, verification report, the answer itself."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ptce_assistant.chunking import SourceRef
from ptce_assistant.config import Lang, Mode
from ptce_assistant.retrieval import Hit


class Citation(SourceRef):
    """A numbered reference to a verbatim passage of the corpus (start/end: the quote's offsets)."""

    n: int
    quote: str = Field(description="Verbatim substring of the chunk text.")


DropReason = Literal[
    "no citation",  # a generated sentence without [n]
    "dangling citation",  # [n] beyond the passages given (detail: the marker)
    "unsupported number",  # a number its passages do not hold (detail: the number)
    "unknown name",  # a name its passages never use (detail: the name)
    "unsupported",  # too few of its words in the cited passages
    "no answer in passages",  # the model's fixed refusal sentence
    "abstained",  # the gate abstained before anything was written (detail: the gate's reason)
]


class Dropped(BaseModel):
    """A sentence that was not kept, and why."""

    sentence: str
    reason: DropReason
    detail: str = Field(
        default="", description="What triggered it: the marker, the number, the name, the gate's words."
    )

    def __str__(self) -> str:
        return f"{self.reason} {self.detail}".strip()


class Verification(BaseModel):
    """What the verifier checked in a composed answer and what it dropped."""

    checked_sentences: int = 0
    kept_sentences: int = 0
    dropped: list[Dropped] = Field(default_factory=list)
    fallback: str | None = Field(default=None, description="Why the extractive answer replaced the LLM's.")


class Answer(BaseModel):
    """What every surface shows: the text with [n] markers and everything needed to check it."""

    question: str
    standalone_query: str
    answer: str
    abstained: bool
    confidence: float
    citations: list[Citation] = Field(default_factory=list)
    consulted: list[Hit] = Field(default_factory=list)
    mode: Mode = "extractive"
    model: str = "extractive"
    lang: Lang = "fr"
    verification: Verification = Field(default_factory=Verification)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    notice: str | None = Field(default=None, description="A one-off message, e.g. the LLM is missing.")
