"""Guide for elected officials: the study's levers, each cited, and which fit a given territory."""

from __future__ import annotations

import streamlit as st

import ui
from ptce_assistant.assistant import Assistant
from ptce_assistant.errors import PtceError
from ptce_assistant.exports import ExportFormat
from ptce_assistant.levers import (
    Lever,
    Stage,
    Territory,
    find_levers,
    lever_question,
    recommend,
    related_passages,
)

TERRITORIES: dict[Territory, str] = {"rural": "Rural", "urbain": "Urbain"}
STAGES: dict[Stage, str] = {"emergence": "Émergence du projet", "developpement": "Développement du projet"}


def lever_card(lever: Lever, head: str, element_id: str | None = None) -> str:
    """The lever's verbatim text with its citation: title, section, position, page."""
    chunk = lever.first
    where = ui.location(chunk, lever.position, lever.count)
    card: str = ui.card_html(head, chunk.title, where, ui.passage_html(lever.text), element_id)
    return card


@st.cache_data(show_spinner="Préparation de la fiche…", max_entries=16)
def _sheet_file(
    _assistant: Assistant, territory: Territory, stage: Stage, profile: str, fmt: ExportFormat, corpus: str
) -> bytes:
    return _assistant.export_levers(recommend(_assistant, territory, stage), profile, fmt)


def sheet_file(assistant: Assistant, territory: Territory, stage: Stage, profile: str, fmt: ExportFormat) -> bytes:
    """The one-page sheet of the ranked levers (built once per profile, format and corpus)."""
    return _sheet_file(assistant, territory, stage, profile, fmt, assistant.index.manifest.corpus_hash)


def profile_form(assistant: Assistant) -> None:
    """Territory and stage → the levers and passages that fit, best first."""
    with st.form("profil"):
        st.markdown("**Quels leviers pour votre territoire ?**")
        territory = st.radio("Territoire", list(TERRITORIES), format_func=TERRITORIES.__getitem__, horizontal=True)
        stage = st.radio("Stade du PTCE", list(STAGES), format_func=STAGES.__getitem__, horizontal=True)
        submitted = st.form_submit_button("Classer les leviers")
    if submitted and territory is not None and stage is not None:
        st.session_state["lever_profile"] = (territory, stage)  # kept while the sheet's format is chosen
    if "lever_profile" not in st.session_state:
        return
    territory, stage = st.session_state["lever_profile"]
    try:
        result = recommend(assistant, territory, stage)
    except PtceError as exc:
        st.error(ui.plain(str(exc)))
        return
    profile = f"territoire {TERRITORIES[territory].lower()}, {STAGES[stage].lower()}"
    st.markdown(f"**Leviers classés pour un {profile}** (du plus au moins pertinent selon la recherche) :")
    ui.export_widget(
        "Exporter la fiche",
        f"fiche-{territory}-{stage}",
        f"ptce-fiche-leviers-{territory}-{stage}",
        lambda fmt: sheet_file(assistant, territory, stage, profile, fmt),
    )
    for ranked in result.levers[:3]:
        ui.show_html(lever_card(ranked.lever, f"{ranked.rank}."))
    if len(result.levers) > 3:
        with st.expander("Les autres leviers, dans l'ordre"):
            for ranked in result.levers[3:]:
                ui.show_html(lever_card(ranked.lever, f"{ranked.rank}."))
    if result.passages:
        st.markdown("**Passages de l'étude qui correspondent à ce profil :**")
        ui.render_hits(result.passages)


def main() -> None:
    """The levers page."""
    ui.page_setup("Leviers")
    assistant = ui.get_assistant()
    levers = find_levers(assistant.index.chunks)
    st.title(f"Les {len(levers)} leviers pour les collectivités" if levers else "Les leviers")
    if not levers:
        st.info("Aucune liste de leviers dans le corpus indexé (une liste sous un titre contenant « levier »).")
        return
    source = levers[0].first
    ui.show_html(
        ui.html_block(
            ui.escape_text(
                f"Tirés de « {source.title} », section « {source.heading} ». Chaque levier est cité mot pour mot."
            ),
            "ptce-text",
        )
    )
    profile_form(assistant)
    st.divider()
    for lever in levers:
        st.header(f"Levier {lever.position} sur {lever.count}")
        ui.show_html(lever_card(lever, f"{lever.position}.", f"levier-{lever.position}"))
        with st.expander("Passages liés : rôle des collectivités, spécificités du rural"):
            try:
                ui.render_hits(related_passages(assistant, lever, levers))
            except PtceError as exc:
                st.error(ui.plain(str(exc)))
        if st.button("Poser une question sur ce levier", key=f"ask-lever-{lever.position}", icon=":material/chat:"):
            ui.ask_in_chat(lever_question(lever))


main()
