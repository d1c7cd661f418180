"""Citations: numbered pointers to verbatim corpus text, and quotes made safe for Markdown."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ptce_assistant.answering.answer import Citation
from ptce_assistant.chunking import Chunk, SourceRef

if TYPE_CHECKING:
    from ptce_assistant.index import CorpusIndex

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~$&])")  # & too: "&#91;9&#93;" renders as [9]
_LINE_END = re.compile(r"[\r\n]")  # a line break inside a quote could open a list or a heading


def markdown_literal(text: str) -> str:
    """Corpus text escaped so markdown shows it as typed: no HTML, no formatting, no fake [9] marker."""
    return _LINE_END.sub(" ", _MARKDOWN_SPECIAL.sub(r"\\\1", text))


def cite(n: int, chunk: Chunk, start: int, end: int) -> Citation:
    """Citation number `n` of chunk.text[start:end], located in the document's text."""
    span = chunk.excerpt(start, end)
    return Citation(n=n, quote=span.text, **span.model_dump(include=set(SourceRef.model_fields)))


def citation_is_valid(citation: Citation, index: CorpusIndex) -> bool:
    """True when the quote is verbatim in its chunk and at its offsets in the document text."""
    chunk = index.by_id.get(citation.chunk_id)
    if chunk is None or citation.quote not in chunk.text:
        return False
    return index.document_text(citation.doc_id)[citation.start : citation.end] == citation.quote
