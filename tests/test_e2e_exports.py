"""In headless Chromium: « Exporter » downloads a file with the answer's quotes; a follow-up is one click."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from browser import LOAD_TIMEOUT_MS, STEP_TIMEOUT_MS, chat_box, chromium, running_app, settle, submit

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def tab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The app on localhost and a Chromium page on it (its address in `tab.app_url`)."""
    with (
        running_app(tmp_path_factory.mktemp("e2e-exports")) as server,
        chromium(tmp_path_factory.mktemp("chromium-exports")) as context,
    ):
        page = context.new_page()
        page.goto(server.url)
        chat_box(page).wait_for(timeout=LOAD_TIMEOUT_MS)
        page.app_url = server.url
        yield page


def download(tab: Any, label: str) -> bytes:
    """Click the download button `label` and return the file the browser received."""
    with tab.expect_download(timeout=STEP_TIMEOUT_MS) as event:
        tab.get_by_role("button", name=label).last.click()
    path = event.value.path()
    return Path(path).read_bytes()


def test_export_an_answer_and_the_conversation_then_follow_a_suggestion(tab: Any) -> None:
    submit(tab, "Que dit le levier 4 sur 8 ?")
    tab.locator("#t1-source-1").wait_for(timeout=STEP_TIMEOUT_MS)
    settle(tab)
    quote = tab.locator("#t1-source-1 mark").inner_text()
    assert quote.startswith("Développer les coopérations inter-collectivités")

    answer_file = download(tab, "Exporter la réponse").decode("utf-8")
    assert answer_file.startswith("# Réponse sourcée")
    assert f"« {quote} »" in answer_file and "levier 4 sur 8" in answer_file

    suggestion = tab.get_by_role("button", name="Que dit le levier 5 sur 8")
    suggestion.click()
    tab.locator("#t2-source-1").wait_for(timeout=STEP_TIMEOUT_MS)
    settle(tab)
    assert tab.locator("#t2-source-1 mark").inner_text().startswith("Impliquer les têtes de réseaux")

    conversation = download(tab, "Exporter la conversation").decode("utf-8")
    assert "## Question 1 : Que dit le levier 4 sur 8 ?" in conversation
    assert "## Question 2 : Que dit le levier 5 sur 8" in conversation
    assert "« Impliquer les têtes de réseaux" in conversation


def test_levers_sheet_downloads_as_a_one_page_pdf(tab: Any) -> None:
    tab.goto(f"{tab.app_url}/Leviers")
    tab.locator("#levier-8").wait_for(timeout=STEP_TIMEOUT_MS)
    settle(tab)
    tab.get_by_text("Urbain", exact=True).click()
    tab.get_by_role("button", name="Classer les leviers").click()
    tab.get_by_role("button", name="Exporter la fiche").wait_for(timeout=STEP_TIMEOUT_MS)
    settle(tab)
    sheet = download(tab, "Exporter la fiche").decode("utf-8")
    assert sheet.startswith("# Fiche leviers : territoire urbain, émergence du projet")
    assert sheet.count("levier ") >= 8 and "« Soutenir l'emploi et les fonctions de coordination" in sheet

    tab.get_by_label("Format (exporter la fiche)").click()  # the format list, then its PDF entry
    tab.get_by_role("option", name="PDF (.pdf)").click()
    data = b""
    for _ in range(20):  # the rerun that builds the PDF may not have started yet: retry until it is there
        tab.wait_for_timeout(500)
        settle(tab)
        data = download(tab, "Exporter la fiche")
        if data.startswith(b"%PDF"):
            break
    pdf = PdfReader(io.BytesIO(data))
    assert len(pdf.pages) == 1
    text = " ".join(pdf.pages[0].extract_text().split())
    assert "Fiche leviers : territoire urbain, émergence du projet" in text and "levier 6 sur 8" in text
