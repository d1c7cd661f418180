"""Audit log page (administrators): download the turns or the corpus events, everyone's or one person's."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime

import streamlit as st

import ui
from ptce_assistant.audit import AuditLog, ExportFormat, ExportTable

TABLES: dict[ExportTable, str] = {
    "turns": "Questions, réponses et avis",
    "events": "Ajouts, retraits, ingestions, exports et purges",
}
FORMATS: dict[ExportFormat, str] = {"jsonl": "JSON Lines", "csv": "CSV"}
MIME: dict[ExportFormat, str] = {"jsonl": "application/jsonl", "csv": "text/csv"}


def exporter(
    audit: AuditLog, actor: str, format: ExportFormat, table: ExportTable, user: str | None
) -> Callable[[], str]:
    """The download's content, built when the button is pressed; the export itself is traced to `actor`."""

    def build() -> str:
        out = io.StringIO()
        audit.export(format, out, actor=actor, user=user, table=table)
        return out.getvalue()

    return build


def main() -> None:
    """The page: what is kept and for how long, then the export."""
    person = ui.page_setup("Journal d'audit", admin_only=True)
    audit = ui.get_audit(ui.get_assistant())
    st.title("Journal d'audit")
    if audit is None:
        st.stop()
    days = audit.retention_days
    st.caption(
        "Chaque question, avis, ajout, retrait et export est enregistré avec l'identifiant de la personne. "
        + (f"Conservation : {days} jours, puis purge automatique." if days else "Conservation sans limite.")
    )
    table: ExportTable = st.radio("Contenu", list(TABLES), format_func=TABLES.__getitem__, key="journal-table")
    format: ExportFormat = st.radio(
        "Format", list(FORMATS), format_func=FORMATS.__getitem__, horizontal=True, key="journal-format"
    )
    user = st.text_input(
        "Une seule personne (son identifiant « sub », ou « local »)",
        key="journal-user",
        help="Droit d'accès : les seules entrées de cette personne. Laisser vide pour tout exporter.",
    ).strip()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    st.download_button(
        "Exporter le journal",
        data=exporter(audit, person.subject, format, table, user or None),
        file_name=f"ptce-audit-{table}-{stamp}.{format}",
        mime=MIME[format],
        icon=":material/download:",
        on_click="ignore",
    )
    st.caption("Effacer les entrées d'une personne (droit à l'effacement) : `ptce audit purge --user SUJET`.")


main()
