"""Structure-aware French chunker: a chunk is a paragraph or one bullet, with its breadcrumb."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, Field

from ptce_assistant.documents import Document
from ptce_assistant.text import sentence_spans


class SourceRef(BaseModel):
    """Where a passage or a quote sits: its passage, document, section, page and offsets.

    Defined once for the records that point into the corpus: a `Chunk` is a source with its text, a
    `Citation` a source with its quote.
    """

    chunk_id: str
    doc_id: str
    title: str
    breadcrumb: list[str] = Field(description="Title > section heading.")
    page: int | None = Field(default=None, description="1-based physical page.")
    page_label: str | None = None
    start: int = Field(description="Offset in the document's extracted text.")
    end: int

    def where(self, item: str | None = None) -> str:
        """« Section › sous-section · levier 7 sur 8 · p. 3 »: the section path, the list item, the page."""
        parts = [" › ".join(self.breadcrumb[1:]) or "Introduction"]
        if item:
            parts.append(item)
        if self.page:
            parts.append(f"p. {self.page_label or self.page}")
        return " · ".join(parts)


class Chunk(SourceRef):
    """A passage of a document, the unit that is embedded, indexed and cited."""

    text: str = Field(description="Exactly document.text[start:end].")
    list_position: int | None = Field(default=None, description="1-based position in its list.")
    list_length: int | None = None

    @property
    def heading(self) -> str:
        """The innermost heading the chunk sits under."""
        return self.breadcrumb[-1] if self.breadcrumb else self.title

    def item_label(self, lang: str = "fr") -> str | None:
        """'levier 3 sur 8' for a list item (the noun from a heading that counts its items), else None."""
        if not self.list_position or not self.list_length:
            return None
        if lang == "en":
            return f"item {self.list_position} of {self.list_length}"
        counted = _COUNTED_HEADING.match(self.heading)
        noun = "point"
        if counted and int(counted[1]) == self.list_length:
            noun = re.sub(r"(?<=\w\w\w)[sx]$", "", counted[2].lower())  # "8 leviers ..." -> levier
        return f"{noun} {self.list_position} sur {self.list_length}"

    def excerpt(self, start: int, end: int) -> Chunk:
        """text[start:end] as a chunk of its own: same id and location, so citations of it stay valid."""
        return self.model_copy(
            update={"text": self.text[start:end], "start": self.start + start, "end": self.start + end}
        )

    def quoted(self, start: int, end: int) -> Chunk:
        """The span [start, end) of the document (a citation's offsets) as a passage of its own."""
        return self.excerpt(start - self.start, end - self.start)

    def indexed_text(self) -> str:
        """What gets embedded and indexed lexically: breadcrumb, then the passage."""
        return " > ".join(self.breadcrumb) + "\n" + self.text


CHUNKER_VERSION = "1"
TARGET_MIN, TARGET_MAX = 200, 600
# A paragraph is merged with the next one only when far below the target, split only when far above.
MERGE_BELOW, SPLIT_ABOVE = 120, 900

_COUNTED_HEADING = re.compile(r"^\s*(\d+)\s+([^\W\d_]+)")
_BULLET = re.compile(r"^[ \t]*(?:[•▪◦‣●■\-–*]|\d{1,2}[.)])[ \t]+")
_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")


@dataclass
class _Block:
    kind: str  # "heading", "bullet" or "paragraph"
    start: int
    end: int
    level: int = 0


def chunk_document(document: Document) -> list[Chunk]:
    """Cut a document into paragraph- and bullet-sized chunks that carry their structure."""
    text = document.text
    blocks = _blocks(text, markdown=document.kind == "md")
    chunks: list[Chunk] = []
    headings: list[tuple[int, str]] = []  # (level, heading) stack under the title
    title_seen = False
    pieces: list[tuple[_Block, list[str]]] = []
    for block in blocks:
        if block.kind == "heading":
            heading = _clean_heading(text[block.start : block.end])
            if not title_seen and _is_title(heading, document.title):
                title_seen = True
                continue
            headings = [h for h in headings if h[0] < block.level] + [(block.level, heading)]
            continue
        title_seen = True
        pieces.append((block, [document.title, *(h for _, h in headings)]))
    page_starts = [page.start for page in document.pages[1:]]
    for block, breadcrumb, position, length in _with_list_positions(pieces, page_starts):
        for start, end in _sized_spans(text, block):
            chunks.append(_make_chunk(document, len(chunks), start, end, breadcrumb, position, length))
    return chunks


def _is_title(heading: str, title: str) -> bool:
    return heading.strip().lower() == title.strip().lower()


def _clean_heading(raw: str) -> str:
    match = _MD_HEADING.match(raw.strip())
    return (match.group(2) if match else raw).strip()


def _blocks(text: str, markdown: bool) -> list[_Block]:
    """Paragraphs, bullets and headings with their offsets (bullet markers left out)."""
    blocks: list[_Block] = []
    for para in re.finditer(r"[^\n](?:.|\n(?![ \t]*\n))*", text):
        lines = [(m.start() + para.start(), m.group()) for m in re.finditer(r"[^\n]+", para.group())]
        current: _Block | None = None
        for offset, line in lines:
            if not line.strip():
                continue
            md = _MD_HEADING.match(line.strip()) if markdown else None
            bullet = _BULLET.match(line)
            if md:
                current = None
                blocks.append(_Block("heading", offset, offset + len(line), level=len(md.group(1))))
            elif bullet:
                current = _Block("bullet", offset + bullet.end(), offset + len(line.rstrip()))
                if current.end <= current.start:
                    current = None  # a bare bullet marker carries no text
                    continue
                blocks.append(current)
            elif current is not None:
                current.end = offset + len(line.rstrip())  # continuation line of a paragraph or bullet
            else:
                current = _Block("paragraph", offset + len(line) - len(line.lstrip()), offset + len(line.rstrip()))
                blocks.append(current)
    if not markdown:
        _mark_plain_headings(text, blocks)
    return blocks


def _mark_plain_headings(text: str, blocks: list[_Block]) -> None:
    """In plain text a heading is a short one-line paragraph without final punctuation."""
    for i, block in enumerate(blocks):
        line = text[block.start : block.end]
        followed = i + 1 < len(blocks)
        if (
            block.kind == "paragraph"
            and followed
            and "\n" not in line
            and len(line) <= 120
            and not line.rstrip().endswith((".", ":", ";", ",", "!", "?", "…"))
        ):
            block.kind, block.level = "heading", 1


def _with_list_positions(
    pieces: list[tuple[_Block, list[str]]],
    page_starts: list[int],
) -> list[tuple[_Block, list[str], int | None, int | None]]:
    """Number consecutive bullets under the same heading: lever 7 of 8."""
    out: list[tuple[_Block, list[str], int | None, int | None]] = []
    run: list[tuple[_Block, list[str]]] = []

    def flush() -> None:
        out.extend((b, crumb, i + 1, len(run)) for i, (b, crumb) in enumerate(run))
        run.clear()

    for block, crumb in pieces:
        if block.kind == "bullet" and (not run or run[-1][1] == crumb):
            run.append((block, crumb))
            continue
        flush()
        if block.kind == "bullet":
            run.append((block, crumb))
        else:
            out.append((block, crumb, None, None))
    flush()
    return _merge_short_paragraphs(out, page_starts)


def _merge_short_paragraphs(
    items: list[tuple[_Block, list[str], int | None, int | None]],
    page_starts: list[int],
) -> list[tuple[_Block, list[str], int | None, int | None]]:
    merged: list[tuple[_Block, list[str], int | None, int | None]] = []
    for block, crumb, position, length in items:
        if merged:
            prev, prev_crumb, prev_pos, _ = merged[-1]
            if (
                position is None
                and prev_pos is None
                and prev_crumb == crumb
                and prev.end - prev.start < MERGE_BELOW
                and block.end - prev.start <= TARGET_MAX
                and not any(prev.end < p <= block.start for p in page_starts)
            ):
                prev.end = block.end
                continue
        merged.append((block, crumb, position, length))
    return merged


def _sized_spans(text: str, block: _Block) -> list[tuple[int, int]]:
    """The block as one span, or cut on sentence boundaries when far above the target size."""
    if block.end - block.start <= SPLIT_ABOVE:
        return [(block.start, block.end)]
    spans: list[tuple[int, int]] = []
    for s, e in sentence_spans(text[block.start : block.end]):
        s, e = block.start + s, block.start + e
        if spans and e - spans[-1][0] <= TARGET_MAX:
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s, e))
    return [piece for span in spans for piece in _hard_split(text, span)]


def _hard_split(text: str, span: tuple[int, int]) -> list[tuple[int, int]]:
    """A single over-long sentence is cut at white space near SPLIT_ABOVE."""
    start, end = span
    pieces: list[tuple[int, int]] = []
    while end - start > SPLIT_ABOVE:
        cut = text.rfind(" ", start + TARGET_MIN, start + TARGET_MAX)  # no slice: linear on a 5 MB line
        cut = cut if cut > start else start + TARGET_MAX
        pieces.append((start, cut))
        start = cut + (1 if text[cut : cut + 1] == " " else 0)
    pieces.append((start, end))
    return pieces


def _make_chunk(
    document: Document,
    index: int,
    start: int,
    end: int,
    breadcrumb: list[str],
    position: int | None,
    length: int | None,
) -> Chunk:
    page = document.page_at(start)
    return Chunk(
        chunk_id=f"{document.doc_id}#{index:04d}",
        doc_id=document.doc_id,
        title=document.title,
        text=document.text[start:end],
        breadcrumb=breadcrumb,
        list_position=position,
        list_length=length,
        page=page.number if page else None,
        page_label=page.label if page else None,
        start=start,
        end=end,
    )
