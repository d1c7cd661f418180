"""What the app's pages share: the cached assistant and audit log, escaping, answer and source cards.

Every piece of corpus or user text goes through `escape_text` before it is rendered with
`unsafe_allow_html`: HTML *and* Markdown syntax are turned into character references, and the
whole fragment stays on one line so Markdown never parses inside it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st
from streamlit.navigation.page import StreamlitPage

import loading
import signin
from ptce_assistant.access import Person
from ptce_assistant.config import PROJECT_ROOT
from ptce_assistant.errors import PtceError
from ptce_assistant.exports import FORMATS, ExportFormat, file_name

if TYPE_CHECKING:  # imported where used: the page shell is drawn before the heavy modules load
    from ptce_assistant.answering.answer import Answer, Citation
    from ptce_assistant.assistant import Assistant
    from ptce_assistant.audit import AuditLog
    from ptce_assistant.chunking import Chunk, SourceRef
    from ptce_assistant.retrieval import Hit

APP_TITLE = "Les PTCE et le rôle des collectivités"
APP_ICON = "📚"
APP_DIR = Path(__file__).resolve().parent
CHAT_TITLE = "Questions-réponses"


@dataclass(frozen=True)
class View:
    """A page of views/ as the navigation lists it (its URL path comes from the file name: /Leviers)."""

    file: str
    title: str
    icon: str
    admin_only: bool = False  # hidden from readers, refused if opened


# Not named pages/: that folder name makes Streamlit add its own English, unfiltered page list.
VIEWS = (
    View("1_Leviers.py", "Leviers", ":material/checklist:"),
    View("2_Documents.py", "Documents", ":material/folder_open:"),
    View("3_Evaluation.py", "Évaluation", ":material/monitoring:", admin_only=True),
    View("4_Journal.py", "Journal d'audit", ":material/history:", admin_only=True),
)
_pages: dict[str, StreamlitPage] = {}  # the chat and every view, by file name ("" for the chat)
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"} | {
    ch: f"&#{ord(ch)};" for ch in "\\`*_{}[]()#+-!|~$:=%"
}
_MARKER = re.compile(r"\[(\d+)\]")
_MARKDOWN_SYMBOL = re.compile(r"([\\`*_\[\]#|~$<>&])")  # links, emphasis, code, math, tables, HTML

# Colours checked by axe-core on the light theme (`ptce app` sets it): every text at least 4.5:1 on its
# background (docs/accessibility.md). Streamlit fades captions and blockquotes (opacity .6) below that.
CSS = """<style>
.ptce-answer { line-height: 1.6; }
.ptce-ref { text-decoration: underline; text-underline-offset: 2px; font-weight: 600; }
.ptce-ref:focus-visible { outline: 2px solid #1f5fbf; outline-offset: 2px; }
.ptce-card { border: 1px solid rgba(128,128,128,.35); border-radius: .5rem; padding: .6rem .8rem;
  margin: .4rem 0 .6rem 0; scroll-margin-top: 4rem; }
.ptce-card:target { outline: 2px solid #8a5200; }
.ptce-card-head { font-size: .95rem; }
.ptce-num { display: inline-block; min-width: 2rem; font-weight: 700; color: #8a5200; }
.ptce-where { color: #595959; font-size: .85rem; margin: .1rem 0 .4rem 0; }
.ptce-card .ptce-passage { color: inherit; opacity: 1; border-left: 3px solid rgba(128,128,128,.6); padding-left: .7rem;
  margin: 0; }
.ptce-passage mark { background: #ffe58a; color: #1a1a1a; padding: 0 .1rem; }
[data-testid="stCaptionContainer"] { opacity: 1; color: #595959; }
</style>"""


@dataclass
class ChatEntry:
    """One question of the conversation and its final answer (turn_id: its row in the audit log)."""

    question: str
    answer: Answer
    turn_id: int | None = None
    anchor: str = ""


# Resources ---------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _loading() -> loading.Loading:
    return loading.assistant_loading()


@st.cache_resource(show_spinner=False)
def _start_preparing(_assistant: Assistant, backend: str) -> threading.Thread:
    def prepare() -> None:
        try:
            _assistant.prepare_generation(backend)  # type: ignore[arg-type]
        except Exception:  # the first question will report the failure itself
            return

    thread = threading.Thread(target=prepare, name=f"prepare-{backend}", daemon=True)
    thread.start()
    return thread


def prepare_generation(assistant: Assistant, backend: str) -> None:
    """Load the chosen LLM (and evaluate its prompt prefix) in the background, once per process."""
    _start_preparing(assistant, backend)


def get_assistant() -> Assistant:
    """The process-wide assistant with its index built, waited for behind a progress message.

    Call it after drawing what needs no model. A user error stops the page with one line (and the
    next run tries again).
    """
    state = _loading()
    if not state.done:
        slot = st.empty()
        with slot.status(state.stage, expanded=False) as status:
            shown = state.stage
            while not state.wait(0.25):
                if state.stage != shown:
                    shown = state.stage
                    status.update(label=shown)
        slot.empty()
    if state.error is not None or state.assistant is None:
        _loading.clear()
        st.error(plain(str(state.error or "chargement interrompu")))
        st.stop()
    return state.assistant


@st.cache_resource(show_spinner=False)
def _load_audit(path: str, retention_days: int) -> AuditLog:
    from ptce_assistant.audit import AuditLog

    return AuditLog(Path(path), retention_days=retention_days)


def get_audit(assistant: Assistant) -> AuditLog | None:
    """The audit log (applying the retention period), or None with a warning when it cannot be opened."""
    settings = assistant.settings
    try:
        return _load_audit(str(settings.audit_db), settings.audit_retention_days)
    except PtceError as exc:
        st.warning(plain(f"Journal d'audit indisponible : {exc}"))
        return None


@st.cache_data(show_spinner=False)
def written_mode_measure() -> str | None:
    """What the committed generative report measured of the written mode, in one line for its caption."""
    from ptce_assistant.evals.records import load_report, written_mode_record

    path = PROJECT_ROOT / "evals" / "reports" / "generative-local" / "report.json"
    try:
        record = written_mode_record(load_report(path))
    except PtceError:
        return None
    if record is None:
        return None
    typical = f", ~{record.total_ms_p50 / 1000:.0f} s par réponse" if record.total_ms_p50 else ""
    return (
        f"mesuré sur {record.split} : introduction écartée dans {record.fallback_rate * 100:.0f} % des réponses"
        f" (citations seules){typical}"
    )


def page_setup(title: str, admin_only: bool = False) -> Person:
    """Page config, no tracebacks, sign-in, who is signed in and the cards' style; returns who is here.

    An `admin_only` page (marked so in VIEWS) stops with one line for anyone else.
    """
    st.set_page_config(page_title=f"{title} · PTCE", page_icon=APP_ICON, layout="centered")
    st.set_option("client.showErrorDetails", "none")  # an unexpected error never shows a traceback
    person = signin.guard(APP_TITLE)
    identity(person)
    st.markdown(CSS, unsafe_allow_html=True)
    if admin_only and not person.is_admin:
        st.title(title)
        st.error("Page réservée aux administrateurs.")
        st.stop()
    return person


def identity(person: Person) -> None:
    """Who is signed in, their role, and « Se déconnecter » (sign-in on); the local role otherwise."""
    with st.sidebar:
        if signin.sign_in_enabled():
            st.caption(plain(f"Connecté : {person.name or person.subject} · {person.role}"))
            st.button("Se déconnecter", icon=":material/logout:", on_click=st.logout, width="stretch")
        else:
            st.caption(plain(f"Sans connexion · {person.role}"))


def open_app(chat: Callable[[], None]) -> None:
    """The entry point: tab title and icon, viewer toolbar, then the page asked for, among those routed.

    Every page is routed for everyone (each page checks who may see it); the sidebar lists, in French,
    only those the person may open, and nothing before sign-in.
    """
    st.set_page_config(page_title=APP_TITLE, page_icon=APP_ICON, layout="centered")
    st.set_option("client.toolbarMode", "viewer")  # no « Deploy » nor developer menu for the élus
    _pages[""] = st.Page(chat, title=CHAT_TITLE, icon=":material/forum:", url_path="", default=True)
    for view in VIEWS:
        _pages[view.file] = st.Page(f"views/{view.file}", title=view.title, icon=view.icon)
    page = st.navigation(list(_pages.values()), position="hidden")
    try:
        person: Person | None = signin.current_person()
    except PtceError:
        person = None  # the page itself shows the sign-in screen
    if person is not None:
        navigation(person)
    page.run()


def navigation(person: Person) -> None:
    """The sidebar's one list of pages, with French names, without the administrators' pages for readers."""
    with st.sidebar:
        st.page_link(_pages[""], label=CHAT_TITLE, icon=":material/forum:")
        for view in VIEWS:
            if person.is_admin or not view.admin_only:
                st.page_link(_pages[view.file], label=view.title, icon=view.icon)
        st.divider()
        # Streamlit writes <html lang="en">: screen readers would read the French with an English voice.
        st.html('<script>document.documentElement.lang = "fr";</script>', unsafe_allow_javascript=True)


# Escaping and HTML fragments ---------------------------------------------------------------------
def escape_text(text: str) -> str:
    """Text as inert HTML: no tag, no Markdown syntax, line breaks kept as <br>."""
    escaped = "".join(_ENTITIES.get(ch, ch) for ch in text.replace("\r\n", "\n").replace("\r", "\n"))
    return escaped.replace("\n", "<br>")


def plain(text: str) -> str:
    """Text for st.error/st.success/st.info (Markdown): every Markdown symbol backslash-escaped."""
    return _MARKDOWN_SYMBOL.sub(r"\\\1", text)


def html_block(inner: str, css_class: str) -> str:
    """A one-line <div> (a blank line would end the raw HTML block and let Markdown parse again)."""
    assert "\n" not in inner
    return f'<div class="{css_class}">{inner}</div>'


def text_html(text: str) -> str:
    """User or model text, rendered as plain text."""
    return html_block(escape_text(text), "ptce-text")


def source_id(anchor: str, n: int) -> str:
    """The HTML id of a source card, the target of the answer's [n] links."""
    return f"{anchor}-source-{n}"


def answer_html(answer: Answer, anchor: str) -> str:
    """The answer text with every [n] of a citation turned into a link to its source card."""
    cited = {c.n for c in answer.citations}
    parts: list[str] = []
    for line in answer.answer.split("\n"):
        line = "• " + line[2:] if line.startswith("- ") else line
        pieces = _MARKER.split(line)  # text, number, text, number, ...
        html_line = ""
        for i, piece in enumerate(pieces):
            if i % 2 == 0:
                html_line += escape_text(piece)
            elif int(piece) in cited:
                html_line += f'<a class="ptce-ref" href="#{source_id(anchor, int(piece))}">[{piece}]</a>'
            else:
                html_line += escape_text(f"[{piece}]")
        # The lead and the part headers ("Partie « … » :") end with a colon: shown as headings of their quotes.
        parts.append(f"<strong>{html_line}</strong>" if line.rstrip().endswith(":") and "[" not in line else html_line)
    return html_block("<br>".join(parts), "ptce-answer")


def location(source: SourceRef, list_position: int | None = None, list_length: int | None = None) -> str:
    """« Section › sous-section · levier 7 sur 8 · p. 3 » (plain text, escape before rendering)."""
    from ptce_assistant.levers import is_lever_heading

    item = None
    if list_position and list_length:
        noun = "levier" if source.breadcrumb and is_lever_heading(source.breadcrumb[-1]) else "point"
        item = f"{noun} {list_position} sur {list_length}"
    return source.where(item)


def passage_html(text: str, start: int | None = None, end: int | None = None) -> str:
    """A passage with [start:end) highlighted."""
    if start is None or end is None:
        return escape_text(text)
    return f"{escape_text(text[:start])}<mark>{escape_text(text[start:end])}</mark>{escape_text(text[end:])}"


def card_html(head: str, title: str, where: str, passage: str, element_id: str | None = None) -> str:
    """A source card; `passage` must already be escaped HTML."""
    id_attr = f' id="{element_id}"' if element_id else ""
    return (
        f'<div class="ptce-card"{id_attr}><div class="ptce-card-head">'
        f'<span class="ptce-num">{escape_text(head)}</span><strong>{escape_text(title)}</strong></div>'
        f'<div class="ptce-where">{escape_text(where)}</div>'
        f'<blockquote class="ptce-passage">{passage}</blockquote></div>'
    )


def quote_span(citation: Citation, chunk: Chunk) -> tuple[int, int] | None:
    """Where the citation's verbatim quote sits in its chunk (from the offsets, else by search)."""
    start = citation.start - chunk.start
    if chunk.text[start : start + len(citation.quote)] == citation.quote and start >= 0:
        return start, start + len(citation.quote)
    found = chunk.text.find(citation.quote)
    return (found, found + len(citation.quote)) if found >= 0 else None


def citation_card_html(citation: Citation, chunk: Chunk | None, anchor: str) -> str:
    """Source card: number, title, breadcrumb, page, the passage with the quoted sentence highlighted."""
    span = quote_span(citation, chunk) if chunk is not None else None
    if chunk is None or span is None:  # the document changed since the answer: show the quote alone
        passage = passage_html(citation.quote, 0, len(citation.quote))
        where = location(citation)
    else:
        passage = passage_html(chunk.text, *span)
        where = location(chunk, chunk.list_position, chunk.list_length)
    return card_html(f"[{citation.n}]", citation.title, where, passage, source_id(anchor, citation.n))


def hit_card_html(hit: Hit, head: str = "") -> str:
    """A retrieved passage (consulted, nearest or related), without highlight."""
    c = hit.chunk
    where = location(c, c.list_position, c.list_length)
    return card_html(head or "·", c.title, where, passage_html(c.text))


# Rendering --------------------------------------------------------------------------------------
def show_html(fragment: str) -> None:
    """Render a fragment built from escaped text only."""
    st.markdown(fragment, unsafe_allow_html=True)


def render_hits(hits: Sequence[Hit]) -> None:
    """Cards for retrieved passages."""
    for hit in hits:
        show_html(hit_card_html(hit, head=f"{hit.rank}."))


def render_answer(answer: Answer, assistant: Assistant, anchor: str) -> None:
    """The answer, its notice, its source cards, and the passages consulted but not cited."""
    if answer.notice:
        st.info(plain(answer.notice))
    if answer.abstained:
        show_html(text_html(answer.answer))
        if answer.consulted:
            st.markdown("**Passages les plus proches** (ils ne répondent pas à la question) :")
            render_hits(answer.consulted)
        return
    show_html(answer_html(answer, anchor))
    if answer.citations:
        st.markdown("**Sources**")
        for citation in answer.citations:
            show_html(citation_card_html(citation, assistant.index.by_id.get(citation.chunk_id), anchor))
    if answer.consulted:
        with st.expander(f"Passages consultés mais non cités ({len(answer.consulted)})"):
            render_hits(answer.consulted)
    label = "extractif" if answer.mode == "extractive" else answer.model
    total = answer.timings_ms.get("total")
    st.caption(
        f"Mode : {label} · confiance {answer.confidence:.2f}" + (f" · {total:.0f} ms" if total is not None else "")
    )


def queue_question(question: str) -> None:
    """Have the chat page ask `question` on its next run."""
    st.session_state["pending_question"] = question


def ask_in_chat(question: str) -> None:
    """Open the chat page with `question` asked (not from a callback: switch_page is ignored there)."""
    queue_question(question)
    st.switch_page(_pages[""])


# Where to go next, take the answer away ----------------------------------------------------------
def follow_up_buttons(answer: Answer, assistant: Assistant, anchor: str, asked: Sequence[str]) -> None:
    """« Pour aller plus loin » : two or three questions from the corpus's outline, one click to ask."""
    suggestions = assistant.follow_ups(answer, asked)
    if not suggestions:
        return
    st.markdown("**Pour aller plus loin**")
    for i, suggestion in enumerate(suggestions):
        st.button(
            suggestion.question,
            key=f"followup-{anchor}-{i}",
            icon=":material/subdirectory_arrow_right:",
            on_click=queue_question,
            args=(suggestion.question,),
        )


@st.cache_data(show_spinner="Préparation du fichier…", max_entries=64)
def _answers_file(_assistant: Assistant, answers_json: tuple[str, ...], fmt: ExportFormat, corpus: str) -> bytes:
    """The export of these answers (cached: a rerun does not rebuild a PDF; `corpus` keys the index)."""
    from ptce_assistant.answering.answer import Answer

    return _assistant.export([Answer.model_validate_json(a) for a in answers_json], fmt)


def answers_file(assistant: Assistant, answers: Sequence[Answer], fmt: ExportFormat) -> bytes:
    """One answer or the conversation, as a file in `fmt` (built once per content and format)."""
    corpus = assistant.index.manifest.corpus_hash
    return _answers_file(assistant, tuple(a.model_dump_json() for a in answers), fmt, corpus)


def export_widget(label: str, key: str, stem: str, make: Callable[[ExportFormat], bytes]) -> None:
    """A format choice and a download button « `label` » (Markdown, Word or PDF)."""
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    with left:
        fmt: ExportFormat = st.selectbox(
            f"Format ({label.lower()})",
            list(FORMATS),
            format_func=lambda f: FORMATS[f][0],
            key=f"export-format-{key}",
        )
    with right:
        try:
            data = make(fmt)
        except PtceError as exc:
            st.warning(plain(str(exc)))
            return
        st.download_button(
            label,
            data=data,
            file_name=file_name(stem, fmt),
            mime=FORMATS[fmt][1],
            key=f"export-{key}",
            icon=":material/download:",
            on_click="ignore",
        )
