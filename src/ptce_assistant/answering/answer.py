"""The records an answer is made of: citations, verification report, the answer itself."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ptce_assistant.chunking import SourceRef
from ptce_assistant.config import Lang, Mode
from ptce_assistant.retrieval import Hit


class Citation(SourceRef):
    """A numbered reference to a verbatim passage of the corpus (start/end: the quote's offsets)."""

    n: int
    quote: str = Field(description="Verbatim substring of the chunk text.")


class Verification(BaseModel):
    """What the verifier checked in a composed answer and what it dropped."""

    checked_sentences: int = 0
    kept_sentences: int = 0
    dropped: list[dict[str, str]] = Field(default_factory=list, description="{'sentence', 'reason'}")
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
