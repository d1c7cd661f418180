"""Documents page: what is indexed (everyone); uploads and removals (administrators, traced in the audit log)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

import signin
import ui
from ptce_assistant.access import Person, require_admin
from ptce_assistant.assistant import Assistant
from ptce_assistant.audit import AuditLog, EventAction
from ptce_assistant.errors import DocumentError, PtceError
from ptce_assistant.index import IngestReport
from ptce_assistant.quotas import check_upload_quota
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


def record_event(audit: AuditLog, person: Person, action: EventAction, detail: dict[str, object]) -> None:
    """Trace a corpus change to its author; a failure to write is shown, never hidden."""
    try:
        audit.log_event(person.subject, action, detail)
    except PtceError as exc:
        st.warning(ui.plain(f"Journal d'audit : {exc}"))


def handle_uploads(assistant: Assistant, files: list[UploadedFile], person: Person, audit: AuditLog) -> None:
    """Check, save and ingest the uploaded files; one line per file says what happened.

    Refused on the server for anyone but an administrator, and past the daily upload volume.
    """
    settings = assistant.settings
    contents = [(file.name, file.getvalue()) for file in files]
    try:
        require_admin(person, "Ajouter des documents")
        check_upload_quota(audit, person.subject, settings, sum(len(data) for _, data in contents))
    except PtceError as exc:
        st.error(ui.plain(str(exc)))
        return
    saved: dict[str, Path] = {}  # by saved file name: the ingestion report names files by path
    sizes: dict[str, int] = {}
    for name, data in contents:
        try:
            path = save_upload(settings, name, data)
            saved[path.name], sizes[path.name] = path, len(data)
        except DocumentError as exc:
            st.error(ui.plain(f"{name} : refusé — {exc.reason}"))
            record_event(audit, person, "upload", {"document": name, "bytes": len(data), "status": "refused"})
    if not saved:
        return
    try:
        report = ingest_with_progress(assistant, list(saved.values()))
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
        if path.name in sizes:
            detail = {"document": path.name, "bytes": sizes[path.name], "status": outcome.status}
            record_event(audit, person, "upload", detail)


def uploaded_documents(assistant: Assistant, person: Person, audit: AuditLog) -> None:
    """A « Retirer » button for each uploaded document: delete the file, then sync the index."""
    uploads = [r for r in assistant.index.manifest.documents.values() if is_upload(r.path, assistant.settings)]
    if not uploads:
        return
    st.header("Documents téléversés")
    for record in uploads:
        name_col, button_col = st.columns([4, 1], vertical_alignment="center")
        name_col.markdown(ui.text_html(f"{record.title} ({record.doc_id})"), unsafe_allow_html=True)
        if button_col.button("Retirer", key=f"remove-{record.doc_id}"):
            try:
                require_admin(person, "Retirer un document")
                remove_upload(assistant.settings, record.path)
                with st.spinner("Mise à jour de l'index…"):
                    assistant.ingest()  # a full sync drops documents whose file is gone
                record_event(audit, person, "remove", {"document": record.doc_id})
                st.session_state["documents_notice"] = ui.plain(f"« {record.title} » retiré du corpus.")
            except PtceError as exc:
                st.session_state["documents_notice_error"] = ui.plain(str(exc))
            st.rerun()


def upload_form(assistant: Assistant, person: Person, audit: AuditLog) -> None:
    """The uploader and its « Indexer les fichiers » button (administrators only)."""
    st.header("Ajouter des documents")
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
        handle_uploads(assistant, list(files or []), person, audit)
        st.session_state["upload_round"] = round_ + 1  # the next run shows an empty uploader


def read_only_notice() -> None:
    """Why a reader sees no upload or removal control, and how an administrator gets them."""
    if signin.sign_in_enabled():
        st.info("Consultation seule : seuls les administrateurs ajoutent ou retirent des documents.")
        return
    st.info(
        "Consultation seule : sans connexion, les documents ne se modifient que depuis la machine qui sert "
        "l'application (127.0.0.1) ou avec le jeton administrateur."
    )
    signin.token_form()


def main() -> None:
    """The documents page: everyone sees the list; only administrators change it."""
    person = ui.page_setup("Documents")
    assistant = ui.get_assistant()
    st.title("Documents du corpus")
    if notice := st.session_state.pop("documents_notice", None):
        st.success(notice)
    if error := st.session_state.pop("documents_notice_error", None):
        st.error(error)
    table = st.container()
    if not person.is_admin:
        read_only_notice()
    elif (audit := ui.get_audit(assistant)) is None:
        st.warning("Ajout et retrait de documents suspendus : le journal d'audit ne peut pas les tracer.")
    else:
        upload_form(assistant, person, audit)
        uploaded_documents(assistant, person, audit)
    with table:
        documents_table(assistant)


main()
