"""Evaluation page: committed reports, assistant vs baselines, per-tag bars and the failing cases."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

import ui
from ptce_assistant.config import PROJECT_ROOT
from ptce_assistant.errors import PtceError
from ptce_assistant.evals.plots import tag_bars_png
from ptce_assistant.evals.records import CaseRecord, EvalReport, load_report
from ptce_assistant.evals.report import case_summary, metric_rows, supported_rate_note, tag_rows

# Overridable to browse reports kept elsewhere (and in tests).
REPORTS_DIR = Path(os.environ.get("PTCE_EVAL_REPORTS_DIR", PROJECT_ROOT / "evals" / "reports"))


@st.cache_data(show_spinner=False)
def cached_report(path: str, mtime: float) -> EvalReport:
    """A report.json, read again only when the file changes."""
    return load_report(Path(path))


@st.cache_data(show_spinner=False)
def cached_tag_bars(path: str, mtime: float, split: str) -> bytes:
    """The per-tag bars of a split, drawn once per report version."""
    return tag_bars_png(cached_report(path, mtime), split)


def show_text(label: str, text: str) -> None:
    """A label and corpus or user text, escaped."""
    st.markdown(f"**{label}**")
    ui.show_html(ui.text_html(text))


def show_case(case: CaseRecord) -> None:
    """Question, history, expected evidence, the answer with its citations and the top passages."""
    st.caption(case_summary(case))
    show_text("Question", case.question)
    for turn in case.history:
        show_text("Historique — " + ("utilisateur" if turn.role == "user" else "assistant"), turn.content)
    answer = case.answer
    if answer.standalone_query != case.question:
        show_text("Requête autonome", answer.standalone_query)
    for number, quote in enumerate(case.expected_quotes, start=1):
        show_text(f"Citation attendue {number}", quote)
    show_text("Réponse" + (" (abstention)" if answer.abstained else ""), answer.answer)
    for citation in answer.citations:
        show_text(f"[{citation.n}] {citation.chunk_id}, car. {citation.start}-{citation.end}", citation.quote)
    st.markdown("**Passages retrouvés (top 10)**")
    st.dataframe(
        [
            {
                "rang": h.rank,
                "passage": h.chunk_id,
                "dense": h.dense_rank,
                "BM25": h.lexical_rank,
                "couvre l'attendu": h.covers_expected,
            }
            for h in case.hits
        ],
        hide_index=True,
    )


def show_split(report: EvalReport, path: Path, split: str) -> None:
    """Metric table, per-tag bars and failing cases of one split."""
    summary = report.splits[split]
    st.info(f"{summary.name} ({summary.n_cases} cas, {summary.n_answerable} avec réponse) — {summary.role}")
    st.table(
        {"métrique": [label for label, _ in metric_rows(report, split)]}
        | {system: [cells[i] for _, cells in metric_rows(report, split)] for i, system in enumerate(report.systems)}
    )
    st.caption(supported_rate_note(summary))
    st.image(
        cached_tag_bars(str(path), path.stat().st_mtime, split),
        alt=f"Barres des métriques par tag sur {split} ; les mêmes valeurs sont dans « Tableau par tag » ci-dessous.",
    )
    with st.expander("Tableau par tag"):
        header, rows = tag_rows(report, split)
        st.dataframe([dict(zip(header, row, strict=True)) for row in rows], hide_index=True)
    failing = report.failing_cases(split)
    st.header(f"Cas en échec ({len(failing)})")
    if not failing:
        return
    st.dataframe(
        [{"cas": c.id, "question": c.question, "métriques en échec": ", ".join(c.failed_metrics)} for c in failing],
        hide_index=True,
    )
    chosen = st.selectbox("Ouvrir un cas", [c.id for c in failing], key=f"case-{split}")
    show_case(next(c for c in failing if c.id == chosen))


ui.page_setup("Évaluation", admin_only=True)
st.title("Évaluation hors ligne")
paths = sorted(REPORTS_DIR.glob("*/report.json"))
if not paths:
    st.info(
        f"Aucun rapport dans {REPORTS_DIR}. Lancez par exemple : "
        "ptce eval evals/dev.jsonl evals/heldout.jsonl --out evals/reports/extractive"
    )
    st.stop()
path = st.selectbox("Rapport", paths, format_func=lambda p: p.parent.name)
try:
    report = cached_report(str(path), path.stat().st_mtime)
except PtceError as exc:
    st.error(str(exc))
    st.stop()
run = report.run
st.caption(
    f"{run.date} · mode {run.mode} · commit {(run.git_commit or 'inconnu')[:10]} · corpus {run.corpus_hash} · "
    f"{run.machine.get('nproc')} cœurs, {run.machine.get('platform')}"
)
with st.expander("Comment lire ces chiffres"):
    for note in run.notes:
        st.markdown(f"- {ui.escape_text(note)}", unsafe_allow_html=True)
for tab, split in zip(st.tabs(list(report.splits)), report.splits, strict=True):
    with tab:
        show_split(report, path, split)
