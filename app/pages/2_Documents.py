"""Documents page: what is indexed, uploads of .txt/.md/.pdf, removal of uploaded documents."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

import ui
from ptce_assistant.assistant import Assistant
from ptce_assistant.errors import DocumentError, PtceError
from ptce_assistant.index import IngestReport
from ptce_assistant.uploads import is_upload, remove_upload, save_upload

STATUS = {"added": "ajouté", "updated": "mis à jour", "unchanged": "inchangé", "removed": "retiré"}


def local_date(iso: str) -> str:
    """ISO UTC timestamp → local « 26/11/2026 11:18 »."""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%d/%m/%Y %H:%M")
    except ValueError:
        return iso


def documents_table(assistant: Assistant) -> None:
    """The indexed documents, their chunk counts and ingestion dates."""
    assistant.index.refresh()
    manifest = assistant.index.manifest
    rows = [
        {
            "Titre": record.title,
            "Fichier": record.doc_id,
            "Passages": record.n_chunks,
            "Pages": record.n_pages or None,
            "Type": record.kind,
            "Indexé le": local_date(record.ingested_at),
            "Origine": "téléversé" if is_upload(record.path, assistant.settings) else "corpus",
        }
        for record in manifest.documents.values()
    ]
    st.dataframe(rows, hide_index=True)
    st.caption(
        f"{len(rows)} document(s), {len(assistant.index.chunks)} passages · empreinte du corpus "
        f"{manifest.corpus_hash} · index {manifest.generation}"
    )


def ingest_with_progress(assistant: Assistant, paths: list[Path] | None) -> IngestReport:
    """Run an ingestion with a progress bar (reading, then embedding)."""
    bar = st.progress(0.0, text="Indexation…")

    def progress(stage: str, done: int, total: int) -> None:
        bar.progress(min(done / total, 1.0) if total else 1.0, text=f"Indexation : {stage} {done}/{total}")

    try:
        return assistant.ingest(paths, progress=progress)
    finally:
        bar.empty()


def handle_uploads(assistant: Assistant, files: list[UploadedFile]) -> None:
    """Check, save and ingest the uploaded files; one line per file says what happened."""
    settings = assistant.settings
    saved: list[Path] = []
    for file in files:
        try:
            saved.append(save_upload(settings, file.name, file.getvalue()))
        except DocumentError as exc:
            st.error(ui.plain(f"{file.name} : refusé — {exc.reason}"))
    if not saved:
        return
    try:
        report = ingest_with_progress(assistant, saved)
    except PtceError as exc:
        st.error(ui.plain(str(exc)))
        return
    for outcome in report.outcomes:
        path = Path(outcome.path)
        if outcome.status == "rejected":
            path.unlink(missing_ok=True)  # a file that cannot be indexed is not kept
            st.error(ui.plain(f"{path.name} : refusé — {outcome.error}"))
        else:
            status = STATUS.get(outcome.status, outcome.status)
            st.success(ui.plain(f"{path.name} : {status} ({outcome.chunks} passages)"))


def uploaded_documents(assistant: Assistant) -> None:
    """A « Retirer » button for each uploaded document: delete the file, then sync the index."""
    uploads = [r for r in assistant.index.manifest.documents.values() if is_upload(r.path, assistant.settings)]
    if not uploads:
        return
    st.subheader("Documents téléversés")
    for record in uploads:
        name_col, button_col = st.columns([4, 1], vertical_alignment="center")
        name_col.markdown(ui.text_html(f"{record.title} ({record.doc_id})"), unsafe_allow_html=True)
        if button_col.button("Retirer", key=f"remove-{record.doc_id}"):
            try:
                remove_upload(assistant.settings, record.path)
                with st.spinner("Mise à jour de l'index…"):
                    assistant.ingest()  # a full sync drops documents whose file is gone
                st.session_state["documents_notice"] = ui.plain(f"« {record.title} » retiré du corpus.")
            except PtceError as exc:
                st.session_state["documents_notice_error"] = ui.plain(str(exc))
            st.rerun()


def main() -> None:
    """The documents page."""
    ui.page_setup("Documents")
    assistant = ui.get_assistant()
    st.title("Documents du corpus")
    if notice := st.session_state.pop("documents_notice", None):
        st.success(notice)
    if error := st.session_state.pop("documents_notice_error", None):
        st.error(error)
    table = st.container()

    st.subheader("Ajouter des documents")
    limit = assistant.settings.max_upload_mb
    round_ = st.session_state.setdefault("upload_round", 0)
    files = st.file_uploader(
        f"Fichiers .txt, .md ou .pdf (au plus {limit} Mo chacun)",
        type=["txt", "md", "pdf"],
        accept_multiple_files=True,
        max_upload_size=limit,
        key=f"uploader-{round_}",
    )
    if st.button("Indexer les fichiers", type="primary", disabled=not files):
        handle_uploads(assistant, list(files or []))
        st.session_state["upload_round"] = round_ + 1  # the next run shows an empty uploader

    uploaded_documents(assistant)
    with table:
        documents_table(assistant)


main()
