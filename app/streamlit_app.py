"""Chat page: grounded answers with checkable sources, feedback, and an audit trail."""

from __future__ import annotations

import itertools
import uuid
from typing import TYPE_CHECKING, Literal

import streamlit as st

import signin
import ui
from ptce_assistant.config import Settings, get_settings
from ptce_assistant.errors import PtceError

if TYPE_CHECKING:  # the heavy modules are imported once the page shell is on screen
    from ptce_assistant.answering.answer import Answer
    from ptce_assistant.assistant import Assistant
    from ptce_assistant.audit import AuditLog
    from ptce_assistant.conversation import Turn

ModeChoice = Literal["extractive", "local", "openai"]
MODES: dict[ModeChoice, str] = {
    "extractive": "Citations exactes (extractif)",
    "local": "Rédigé par le modèle local",
    "openai": "Modèle distant (OpenAI-compatible)",
}
EXAMPLES = (
    "Quels sont les huit leviers identifiés par l'étude ?",
    "Quel est le rôle des collectivités dans l'émergence des PTCE ?",
    "Quelles sont les spécificités des PTCE en milieu rural ?",
)


def choose_mode(settings: Settings) -> ModeChoice:
    """Sidebar selector; a backend that cannot answer is explained and replaced by the extractive mode."""
    from ptce_assistant.llm import llm_status  # langchain: ~0.5 s, after the page shell

    statuses = {backend: llm_status(settings, backend) for backend in ("local", "openai")}
    captions = ["Phrases vérifiées du corpus, affichées immédiatement."]
    for backend in ("local", "openai"):
        status = statuses[backend]
        caption = f"{status.model} — disponible" if status.available else f"Indisponible — {status.reason}"
        if backend == "local" and (measured := ui.written_mode_measure()):
            caption += f" · {measured}"
        captions.append(caption)
    choice: ModeChoice = (
        st.radio("Mode de réponse", list(MODES), format_func=MODES.__getitem__, captions=captions, key="mode")
        or "extractive"
    )
    if choice != "extractive" and not statuses[choice].available:
        st.warning(f"{MODES[choice]} indisponible ({statuses[choice].reason}) : réponses en mode extractif.")
        return "extractive"
    if choice != "extractive":
        st.caption(
            "Les citations vérifiées s'affichent d'abord ; le modèle écrit ensuite une introduction d'une ou deux "
            "phrases, affichée seulement si chacune est appuyée par une citation."
        )
    return choice


def history_of(entries: list[ui.ChatEntry]) -> list[Turn]:
    """The conversation so far, as the assistant reads it."""
    from ptce_assistant.conversation import Turn

    turns: list[Turn] = []
    for entry in entries:
        turns += [Turn(role="user", content=entry.question), Turn(role="assistant", content=entry.answer.answer)]
    return turns


def record_feedback(audit: AuditLog, turn_id: int) -> None:
    """st.feedback callback: 1 is thumbs up, 0 thumbs down."""
    value = st.session_state.get(f"feedback-{turn_id}")
    if value is None:
        return
    try:
        audit.add_feedback(turn_id, "up" if value == 1 else "down", actor=signin.current_person().subject)
    except PtceError as exc:
        st.session_state["audit_error"] = str(exc)


def feedback_widgets(entry: ui.ChatEntry, audit: AuditLog | None) -> None:
    """Thumbs up/down, then an optional comment, attached to the turn in the audit log."""
    if audit is None or entry.turn_id is None:
        return
    turn_id = entry.turn_id
    rating = st.feedback("thumbs", key=f"feedback-{turn_id}", on_change=record_feedback, args=(audit, turn_id))
    if rating is None:
        return
    with st.form(f"comment-{turn_id}", clear_on_submit=True, border=False):
        comment = st.text_input(
            "Commentaire (facultatif)",
            key=f"comment-text-{turn_id}",
            placeholder="Qu'est-ce qui manque ou est inexact ?",
        )
        if st.form_submit_button("Envoyer le commentaire") and comment.strip():
            try:
                audit.add_feedback(
                    turn_id, "up" if rating == 1 else "down", comment, actor=signin.current_person().subject
                )
                st.success("Merci, commentaire enregistré.")
            except PtceError as exc:
                st.warning(ui.plain(str(exc)))


def answer_tools(entry: ui.ChatEntry, assistant: Assistant, entries: list[ui.ChatEntry]) -> None:
    """Under an answer: its export, then the follow-up questions."""
    ui.export_widget(
        "Exporter la réponse",
        entry.anchor,
        "ptce-reponse",
        lambda fmt: ui.answers_file(assistant, [entry.answer], fmt),
    )
    ui.follow_up_buttons(entry.answer, assistant, entry.anchor, [e.question for e in entries])


def show_entry(entry: ui.ChatEntry, assistant: Assistant, audit: AuditLog | None, entries: list[ui.ChatEntry]) -> None:
    """One finished turn: question, answer with sources, feedback, export and follow-ups."""
    with st.chat_message("user"):
        ui.show_html(ui.text_html(entry.question))
    with st.chat_message("assistant"):
        ui.render_answer(entry.answer, assistant, entry.anchor)
        feedback_widgets(entry, audit)
        answer_tools(entry, assistant, entries)


def answer_live(
    question: str, entries: list[ui.ChatEntry], choice: ModeChoice, assistant: Assistant, audit: AuditLog | None
) -> None:
    """Ask, show the verified quotes at once, then the final answer (with its verified written lead, if any)."""
    from ptce_assistant.quotas import check_question_quota

    history = history_of(entries)
    anchor = f"t{len(entries) + 1}"
    with st.chat_message("user"):
        ui.show_html(ui.text_html(question))
    with st.chat_message("assistant"):
        slot = st.empty()
        final: Answer | None = None
        stream_box = None
        try:
            if audit is not None:
                check_question_quota(audit, signin.current_person().subject, assistant.settings)
            with st.spinner("Recherche dans le corpus…"):
                events = assistant.stream(
                    question,
                    history,
                    mode="extractive" if choice == "extractive" else "generative",
                    llm=None if choice == "extractive" else choice,
                )
                first = next(events)
            for event in itertools.chain([first], events):
                if event.kind == "draft" and event.answer is not None:
                    with slot.container():
                        ui.render_answer(event.answer, assistant, anchor)
                        # The model's words are shown only once verified: never a refusal typed live.
                        stream_box = st.empty()
                        stream_box.caption(
                            "Le modèle rédige une introduction ; elle s'affichera au-dessus une fois vérifiée…"
                        )
                elif event.kind == "final":
                    final = event.answer
        except PtceError as exc:
            slot.error(ui.plain(str(exc)))
            return
        assert final is not None
        entry = ui.ChatEntry(question=question, answer=final, anchor=anchor)
        if audit is not None:
            try:
                entry.turn_id = audit.log_turn(
                    st.session_state["session_id"],
                    final,
                    assistant.index.manifest.corpus_hash,
                    history,
                    actor=signin.current_person().subject,
                )
            except PtceError as exc:
                st.warning(ui.plain(f"Journal d'audit : {exc}"))
        entries.append(entry)
        if stream_box is not None:
            stream_box.empty()
        slot.empty()  # drop the draft's block: a shorter final block would leave its tail on screen
        with slot.container():
            ui.render_answer(final, assistant, anchor)
            feedback_widgets(entry, audit)
            answer_tools(entry, assistant, entries)


def main() -> None:
    """The chat page: its shell (title, examples, question box) is drawn first, with no heavy import,
    then the sidebar's modes, then the models and index are waited for."""
    ui.page_setup(ui.CHAT_TITLE)
    settings = get_settings()
    st.session_state.setdefault("session_id", uuid.uuid4().hex)
    entries: list[ui.ChatEntry] = st.session_state.setdefault("entries", [])

    st.title(ui.APP_TITLE)
    st.caption(
        "Assistant sourcé sur l'étude du RTES (2014) : chaque phrase renvoie à sa source ; "
        "quand le corpus ne répond pas, il le dit."
    )
    if error := st.session_state.pop("audit_error", None):
        st.warning(ui.plain(f"Journal d'audit : {error}"))
    examples = st.empty()
    if not entries:
        with examples.container():
            st.markdown("Exemples de questions :")
            for example in EXAMPLES:
                st.button(example, key=f"example-{example}", on_click=ui.queue_question, args=(example,))

    typed = st.chat_input("Posez une question sur l'étude…", max_chars=settings.max_question_chars)

    with st.sidebar:
        choice = choose_mode(settings)
        # A callback: it runs before the page is drawn again, so the examples come back at once.
        st.button("Nouvelle conversation", icon=":material/add_comment:", width="stretch", on_click=entries.clear)
        corpus_line = st.empty()
        conversation_export = st.empty()  # filled last: the conversation includes the answer just given

    assistant = ui.get_assistant()  # a question typed meanwhile waits here for what is still loading
    audit = ui.get_audit(assistant)
    if choice != "extractive":
        ui.prepare_generation(assistant, choice)
    manifest = assistant.index.manifest
    corpus_line.caption(
        f"{len(manifest.documents)} document(s), {len(assistant.index.chunks)} passages · corpus {manifest.corpus_hash}"
    )
    for entry in entries:
        show_entry(entry, assistant, audit, entries)

    question = typed or st.session_state.pop("pending_question", None)
    if question and question.strip():
        examples.empty()
        answer_live(question, entries, choice, assistant, audit)
    if entries:
        with conversation_export.container():
            ui.export_widget(
                "Exporter la conversation",
                "conversation",
                "ptce-conversation",
                lambda fmt: ui.answers_file(assistant, [e.answer for e in entries], fmt),
            )


ui.open_app(main)
