"""Take the answer away: answers, conversations and lever sheets as Markdown, Word (.docx) or PDF files.

One outline of blocks (question, answer lines, each quote verbatim with its source) is built once per
export and written by three small writers, so the three formats always carry the same content: the
date, the corpus fingerprint, and for every [n] of an answer its quote and where it is (title,
section, list position, page, characters).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from ptce_assistant.answering.answer import Answer, Citation
from ptce_assistant.answering.citations import cite
from ptce_assistant.chunking import Chunk
from ptce_assistant.config import Lang
from ptce_assistant.errors import PtceError
from ptce_assistant.levers import Recommendation

ExportFormat = Literal["md", "docx", "pdf"]
FORMATS: dict[ExportFormat, tuple[str, str]] = {  # label, MIME type
    "md": ("Markdown (.md)", "text/markdown"),
    "docx": ("Word (.docx)", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "pdf": ("PDF (.pdf)", "application/pdf"),
}
BlockKind = Literal["title", "meta", "heading", "label", "text", "quote", "source"]

LABELS: dict[Lang, dict[str, str]] = {
    "fr": {
        "answer": "Réponse sourcée",
        "conversation": "Conversation",
        "question": "Question",
        "reply": "Réponse",
        "sources": "Sources",
        "nearest": "Passages les plus proches (ils ne répondent pas à la question)",
        "meta": "Exporté le {date} · empreinte du corpus {corpus} · assistant PTCE (citations vérifiées)",
        "chars": "caractères",
    },
    "en": {
        "answer": "Sourced answer",
        "conversation": "Conversation",
        "question": "Question",
        "reply": "Answer",
        "sources": "Sources",
        "nearest": "Nearest passages (they do not answer the question)",
        "meta": "Exported on {date} · corpus fingerprint {corpus} · PTCE assistant (verified quotes)",
        "chars": "characters",
    },
}
_MONTHS = {
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "en": "January February March April May June July August September October November December",
}


@dataclass(frozen=True)
class Block:
    """One element of an export: a title, a heading, a line of answer, a quote or its source."""

    kind: BlockKind
    text: str


@dataclass(frozen=True)
class ExportDocument:
    """What an export says, before it is written in a format."""

    title: str
    blocks: list[Block]
    compact: bool = False  # the lever sheet fits on one page


def stamp(when: datetime, lang: Lang) -> str:
    """« 4 décembre 2026 à 14:20 UTC » / « 4 December 2026 at 14:20 UTC »."""
    when = when.astimezone(UTC)
    month = _MONTHS[lang].split()[when.month - 1]
    joiner = "at" if lang == "en" else "à"
    return f"{when.day} {month} {when.year} {joiner} {when:%H:%M} UTC"


def source_line(citation: Citation, chunk: Chunk | None, lang: Lang, head: str | None = None) -> str:
    """« [3] Title — Section · levier 3 sur 8 · p. 2 · caractères 120–245 » (`head` replaces « [3] Title — »)."""
    where = citation.where(chunk.item_label(lang) if chunk is not None else None)
    chars = f"{LABELS[lang]['chars']} {citation.start}–{citation.end}"
    return (f"[{citation.n}] {citation.title} — " if head is None else head) + f"{where} · {chars}"


def _chunk_source(chunk: Chunk, lang: Lang, head: str) -> str:
    """The source of a whole passage (a nearest passage, a lever)."""
    return source_line(cite(0, chunk, 0, len(chunk.text)), chunk, lang, head)


def _still_quoted(citation: Citation, chunks: Mapping[str, Chunk]) -> Chunk | None:
    """The citation's chunk if it still holds the quote (after a re-ingestion its list position may differ)."""
    chunk = chunks.get(citation.chunk_id)
    return chunk if chunk is not None and citation.quote in chunk.text else None


def _language(answers: Sequence[Answer]) -> Lang:
    """English labels only when every answer is in English."""
    return "en" if answers and all(a.lang == "en" for a in answers) else "fr"


def answers_document(
    answers: Sequence[Answer], corpus_hash: str, chunks: Mapping[str, Chunk], when: datetime | None = None
) -> ExportDocument:
    """One answer, or a whole conversation, with every quote verbatim and its source."""
    if not answers:
        raise PtceError("rien à exporter : posez d'abord une question")
    lang = _language(answers)
    labels = LABELS[lang]
    title = labels["answer"] if len(answers) == 1 else labels["conversation"]
    blocks = [
        Block("title", title),
        Block("meta", labels["meta"].format(date=stamp(when or datetime.now(UTC), lang), corpus=corpus_hash)),
    ]
    for number, answer in enumerate(answers, start=1):
        question = labels["question"] + (f" {number}" if len(answers) > 1 else "")
        blocks += [Block("heading", f"{question} : {answer.question}"), Block("label", labels["reply"])]
        blocks += [Block("text", line) for line in answer.answer.split("\n") if line.strip()]
        if answer.citations:
            blocks.append(Block("label", labels["sources"]))
        for citation in answer.citations:
            blocks += [
                Block("source", source_line(citation, _still_quoted(citation, chunks), answer.lang)),
                Block("quote", f"« {citation.quote} »"),
            ]
        if answer.abstained and answer.consulted:
            blocks.append(Block("label", labels["nearest"]))
            for hit in answer.consulted:
                blocks += [
                    Block("source", _chunk_source(hit.chunk, answer.lang, f"{hit.rank}. {hit.chunk.title} — ")),
                    Block("quote", f"« {hit.chunk.text} »"),
                ]
    return ExportDocument(title=title, blocks=blocks)


def levers_document(
    recommendation: Recommendation, profile: str, corpus_hash: str, when: datetime | None = None
) -> ExportDocument:
    """The one-page « fiche »: the levers ranked for a territory and stage, each verbatim with its source."""
    labels = LABELS["fr"]
    title = f"Fiche leviers : {profile}"
    blocks = [
        Block("title", title),
        Block("meta", labels["meta"].format(date=stamp(when or datetime.now(UTC), "fr"), corpus=corpus_hash)),
    ]
    if recommendation.levers:
        first = recommendation.levers[0].lever.first
        blocks.append(
            Block(
                "text",
                f"Les leviers de « {first.title} » (section « {first.heading} »), du plus au moins pertinent "
                "pour ce profil selon la recherche de l'assistant ; chaque levier est cité mot pour mot.",
            )
        )
    for ranked in recommendation.levers:
        lever = ranked.lever
        blocks += [
            Block("source", _chunk_source(lever.first, "fr", f"{ranked.rank}. ")),
            Block("quote", f"« {lever.text} »"),
        ]
    return ExportDocument(title=title, blocks=blocks, compact=True)


# Writers -----------------------------------------------------------------------------------------
def to_markdown(document: ExportDocument) -> bytes:
    """Markdown: quotes as block quotes, verbatim (the file is read, not rendered by the app)."""
    lines: list[str] = []
    for block in document.blocks:
        if block.kind == "title":
            lines += [f"# {block.text}", ""]
        elif block.kind == "meta":
            lines += [f"_{block.text}_", ""]
        elif block.kind == "heading":
            lines += [f"## {block.text}", ""]
        elif block.kind == "label":
            lines += [f"**{block.text}**", ""]
        elif block.kind == "quote":
            lines += ["> " + block.text.replace("\n", "\n> "), ""]
        elif block.kind == "source":
            lines += [block.text, ""]
        else:
            lines += [block.text, ""]
    return ("\n".join(lines).rstrip() + "\n").encode("utf-8")


def to_docx(document: ExportDocument) -> bytes:
    """A Word document: headings, the answer's lines, each source followed by its quote (style « Quote »)."""
    from docx import Document
    from docx.shared import Pt

    word = Document()
    word.core_properties.title = document.title
    size = Pt(9.5) if document.compact else Pt(11)
    for block in document.blocks:
        if block.kind == "title":
            word.add_heading(block.text, level=1 if document.compact else 0)
        elif block.kind == "heading":
            word.add_heading(block.text, level=2)
        elif block.kind == "label":
            word.add_paragraph().add_run(block.text).bold = True
        elif block.kind == "quote":
            word.add_paragraph(block.text, style="Quote").runs[0].font.size = size
        else:
            run = word.add_paragraph().add_run(block.text)
            run.font.size = Pt(9) if block.kind in ("meta", "source") else size
            run.italic = block.kind == "meta"
    buffer = io.BytesIO()
    word.save(buffer)
    return buffer.getvalue()


def _font_dir() -> Path:
    """DejaVu Sans, a Unicode TrueType font (« », accents), as shipped with matplotlib."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def to_pdf(document: ExportDocument) -> bytes:
    """An A4 PDF in DejaVu Sans, so that accents and « » are kept and its text can be extracted."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_margins(15, 14, 15)
    pdf.set_auto_page_break(True, margin=14)
    pdf.set_title(document.title)
    fonts = _font_dir()
    pdf.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
    pdf.add_page()
    body = 9 if document.compact else 10.5
    line = body * 0.45
    for block in document.blocks:
        style, size, indent, after = {
            "title": ("B", body + 6, 0.0, 2.0),
            "meta": ("", body - 1.5, 0.0, 3.0),
            "heading": ("B", body + 2.5, 0.0, 1.5),
            "label": ("B", body, 0.0, 1.0),
            "text": ("", body, 0.0, 1.0),
            "source": ("B" if document.compact else "", body - 1, 0.0, 0.5),
            "quote": ("", body, 6.0, 2.0 if document.compact else 2.5),
        }[block.kind]
        pdf.set_font("DejaVu", style, size)
        pdf.set_x(pdf.l_margin + indent)
        pdf.multi_cell(pdf.epw - indent, line if size <= body else size * 0.5, block.text, align="L", new_x="LMARGIN")
        pdf.ln(after)
    return bytes(pdf.output())


WRITERS = {"md": to_markdown, "docx": to_docx, "pdf": to_pdf}


def render(document: ExportDocument, fmt: ExportFormat) -> bytes:
    """The document written in `fmt` (md, docx or pdf)."""
    if fmt not in WRITERS:
        raise PtceError(f"format d'export inconnu : {fmt} (md, docx ou pdf)")
    return WRITERS[fmt](document)


def file_name(stem: str, fmt: ExportFormat, when: datetime | None = None) -> str:
    """« ptce-reponse-2026-12-04-1420.pdf »."""
    return f"{stem}-{(when or datetime.now(UTC)):%Y-%m-%d-%H%M}.{fmt}"


__all__ = [
    "FORMATS",
    "Block",
    "ExportDocument",
    "ExportFormat",
    "answers_document",
    "file_name",
    "levers_document",
    "render",
    "source_line",
    "stamp",
]
