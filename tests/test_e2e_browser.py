"""End to end: `ptce app` served on localhost, driven by headless Chromium through Playwright.

Saves the README's screenshots in docs/screenshots/. The time from submitting a question to the answer
being visible is measured by benchmarks/cold_start.py, not here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from browser import (
    LOAD_TIMEOUT_MS,
    QUESTIONS,
    SCREENSHOTS,
    STEP_TIMEOUT_MS,
    Server,
    chat_box,
    chromium,
    feedback_rows,
    new_conversation,
    running_app,
    settle,
    submit,
)
from servers import wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app as one person runs it on their laptop (sign-in off, the browser on 127.0.0.1)."""
    with running_app(tmp_path_factory.mktemp("e2e")) as app:
        yield app


@pytest.fixture(scope="module")
def page(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium page with a fresh profile, the app loaded."""
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        tab = context.new_page()
        tab.goto(server.url)
        chat_box(tab).wait_for(timeout=LOAD_TIMEOUT_MS)
        yield tab


def test_ask_check_the_source_and_rate_the_answer(server: Server, page: Any) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    submit(page, "Quelles sont les spécificités des PTCE en milieu rural ?")
    card = page.locator("#t1-source-1")
    card.wait_for(timeout=STEP_TIMEOUT_MS)
    quote = card.locator("mark").inner_text()
    assert len(quote) > 20 and quote in card.inner_text()
    assert page.locator(".ptce-answer a.ptce-ref").count() >= 1
    # The answer's shape: where it comes from, then the quotes under their part, list items with their place.
    answer = page.locator(".ptce-answer").first.inner_text()
    assert answer.startswith("Selon « Les PTCE et le rôle des collectivités »")
    assert "Partie « Transversalité, mutualisation, perspective et spécificité en rural » :" in answer
    assert "point 4 sur 4 : « Les spécificités de la ruralité" in answer
    settle(page)
    page.get_by_text("Quelles sont les spécificités des PTCE en milieu rural").first.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "chat.png"))

    # The README shows a card whose passage is longer than its highlighted quote.
    cards = page.locator("[id^='t1-source-']")

    def highlight_is_part_of_the_passage(i: int) -> bool:
        card = cards.nth(i)
        return len(card.locator("mark").inner_text().strip()) < len(card.locator("blockquote").inner_text().strip())

    shown = next((i for i in range(cards.count()) if highlight_is_part_of_the_passage(i)), 0)
    target = cards.nth(shown).get_attribute("id")
    page.locator(f".ptce-answer a.ptce-ref[href='#{target}']").click()  # the [n] marker jumps to its card
    wait_until(lambda: page.url.endswith(f"#{target}"), 10, "the anchor link")
    page.locator(f"#{target}").screenshot(path=str(SCREENSHOTS / "source-card.png"))

    with sqlite3.connect(server.audit_db) as conn:
        (turn_id,) = conn.execute("SELECT id FROM turns WHERE question LIKE 'Quelles sont%'").fetchone()
    rating = page.locator("[data-testid='stFeedback']").last
    rating.get_by_role("radio", name="Thumbs down").click()
    wait_until(lambda: feedback_rows(server.audit_db) == [(turn_id, "down")], 30, "the thumbs-down row")
    rating.get_by_role("radio", name="Thumbs up").click()
    wait_until(lambda: feedback_rows(server.audit_db)[-1:] == [(turn_id, "up")], 30, "the thumbs-up row")


def test_out_of_corpus_question_abstains_in_the_browser(page: Any) -> None:
    new_conversation(page)
    submit(page, "Quelle est la capitale du Japon ?")
    page.get_by_text("Le corpus ne répond pas à cette question").wait_for(timeout=STEP_TIMEOUT_MS)
    page.get_by_text("Passages les plus proches").last.wait_for(timeout=STEP_TIMEOUT_MS)


def test_levers_page_ranks_and_asks(server: Server, page: Any) -> None:
    page.goto(f"{server.url}/Leviers")
    page.locator("#levier-8").wait_for(timeout=STEP_TIMEOUT_MS)  # every lever has its own card
    settle(page)
    assert [page.locator(f"#levier-{n}").count() for n in range(1, 9)] == [1] * 8
    assert "levier 7 sur 8" in page.locator("#levier-7").inner_text()
    page.get_by_text("Urbain", exact=True).click()
    page.get_by_text("Développement du projet", exact=True).click()
    page.get_by_role("button", name="Classer les leviers").click()
    ranking = page.get_by_text("Leviers classés pour un territoire urbain")
    ranking.wait_for(timeout=STEP_TIMEOUT_MS)
    settle(page)
    page.get_by_text("Quels leviers pour votre territoire ?").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "levers.png"))

    page.get_by_role("button", name="Poser une question sur ce levier").nth(6).click()
    page.get_by_text("Que dit l'étude sur le levier 7 sur 8").first.wait_for(timeout=STEP_TIMEOUT_MS)
    page.locator("#t1-source-1").wait_for(timeout=STEP_TIMEOUT_MS)
    assert "Soutenir l'emploi" in page.locator("#t1-source-1 mark").inner_text()


def test_each_new_conversation_answers_afresh_with_its_sources(server: Server, page: Any) -> None:
    """After the app has loaded, five questions each in a new conversation: one answer each, cited and sourced."""
    page.goto(server.url)
    chat_box(page).wait_for(timeout=LOAD_TIMEOUT_MS)
    for question in QUESTIONS:
        new_conversation(page)
        submit(page, question)
        card = page.locator("#t1-source-1")
        card.wait_for(state="visible", timeout=STEP_TIMEOUT_MS)
        settle(page)
        assert page.locator(".ptce-answer").count() == 1, question  # the previous conversation is gone
        assert page.locator(".ptce-answer a.ptce-ref").count() >= 1, question
        quote = card.locator("mark").inner_text()
        assert quote.strip() and quote in card.inner_text(), question
