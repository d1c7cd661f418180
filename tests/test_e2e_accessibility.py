"""Accessibility and first run in headless Chromium: the page before the models, axe-core, the keyboard.

axe-core (the copy shipped by axe-playwright-python) runs on the chat page with an answer, the Leviers,
Documents and Évaluation pages: no serious or critical violation is allowed. The keyboard tests reach
and use the question box, the source links [n], the feedback buttons and the export button with Tab,
Enter and Space only.
docs/accessibility.md says what this covers and what remains.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser import (
    LOAD_TIMEOUT_MS,
    SCREENSHOTS,
    STEP_TIMEOUT_MS,
    Server,
    chat_box,
    chromium,
    feedback_rows,
    running_app,
    settle,
)

pytestmark = pytest.mark.browser

QUESTION = "Quelles sont les spécificités des PTCE en milieu rural ?"
BLOCKING = ("serious", "critical")

# Records, from the first byte of the page on, when each thing appeared and when the loading ended.
WATCH_LOADING = """
window.__ptce = {};
new MutationObserver(() => {
  const seen = (name, found) => {
    if (found && window.__ptce[name] === undefined) window.__ptce[name] = performance.now();
  };
  seen("title", [...document.querySelectorAll("h1")].some((h) => h.innerText.includes("Les PTCE et le rôle")));
  seen("examples", [...document.querySelectorAll("button")].some((b) => b.innerText.includes("huit leviers")));
  seen("input", document.querySelector("textarea[placeholder^='Posez une question']"));
  seen("progress", document.body && document.body.innerText.includes("Chargement du modèle"));
  seen("loaded", document.body && /passages · corpus/.test(document.body.innerText));
}).observe(document, {childList: true, subtree: true, characterData: true});
"""


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An app that has loaded nothing yet and has no index: its first page view starts the loading."""
    with running_app(tmp_path_factory.mktemp("a11y")) as app:
        yield app


@pytest.fixture(scope="module")
def context(fresh_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("a11y-profile")) as browser:
        yield browser


def violations(tab: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line per rule."""
    from axe_playwright_python.sync_playwright import Axe

    settle(tab)
    # Elements of a run that just ended fade out (opacity) until replaced: they are not what the user reads.
    tab.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')", timeout=STEP_TIMEOUT_MS)
    response = Axe().run(tab).response
    return [
        f"{v['id']} ({v['impact']}): {[(node['target'], node['html'][:120]) for node in v['nodes']][:5]}"
        for v in response["violations"]
        if v["impact"] in BLOCKING
    ]


def tab_to(tab: Any, selector: str, presses: int = 120) -> None:
    """Press Tab until the focused element matches `selector` (fails if it never does)."""
    for _ in range(presses):
        tab.keyboard.press("Tab")
        if tab.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_the_chat_page_is_there_before_the_models_and_a_question_waits_for_them(
    fresh_server: Server, context: Any
) -> None:
    tab = context.new_page()
    tab.add_init_script(WATCH_LOADING)
    tab.goto(fresh_server.url)
    chat_box(tab).wait_for(timeout=LOAD_TIMEOUT_MS)
    progress = tab.get_by_text("Chargement du modèle d'embeddings")
    if progress.count():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(SCREENSHOTS / "loading.png"))
    box = chat_box(tab)
    box.fill(QUESTION)  # asked while the models and the index are still loading
    box.press("Enter")
    tab.locator("#t1-source-1").wait_for(timeout=LOAD_TIMEOUT_MS)
    seen = tab.evaluate("window.__ptce")
    assert {"title", "examples", "input", "progress", "loaded"} <= set(seen), seen
    assert max(seen["title"], seen["examples"], seen["input"]) < seen["loaded"], seen
    assert seen["progress"] < seen["loaded"], seen
    print(
        f"\npage drawn after {max(seen['title'], seen['input']):.0f} ms; models and index ready after "
        f"{seen['loaded']:.0f} ms (fresh index)"
    )
    tab.close()


def test_no_serious_violation_on_the_chat_page_with_an_answer(fresh_server: Server, context: Any) -> None:
    tab = context.new_page()
    tab.goto(fresh_server.url)
    chat_box(tab).fill(QUESTION)
    chat_box(tab).press("Enter")
    tab.locator("#t1-source-1").wait_for(timeout=LOAD_TIMEOUT_MS)
    assert violations(tab) == []
    tab.close()


@pytest.mark.parametrize(
    ("path", "heading"), [("Leviers", "leviers"), ("Documents", "Documents"), ("Evaluation", "Évaluation")]
)
def test_no_serious_violation_on_the_other_pages(fresh_server: Server, context: Any, path: str, heading: str) -> None:
    tab = context.new_page()
    tab.goto(f"{fresh_server.url}/{path}")
    tab.get_by_role("heading", level=1).filter(has_text=heading).wait_for(timeout=LOAD_TIMEOUT_MS)
    if path == "Evaluation":
        tab.locator("[data-testid='stImage'] img").first.wait_for(timeout=STEP_TIMEOUT_MS)
    if path == "Leviers":  # the ranking, with its « Exporter la fiche »
        tab.get_by_role("button", name="Classer les leviers").click()
        tab.get_by_text("Exporter la fiche").first.wait_for(timeout=STEP_TIMEOUT_MS)
    assert violations(tab) == []
    tab.close()


def test_one_french_navigation_no_deploy_button_and_a_page_title(fresh_server: Server, context: Any) -> None:
    tab = context.new_page()
    tab.goto(f"{fresh_server.url}/Leviers")
    tab.get_by_role("heading", level=1).first.wait_for(timeout=LOAD_TIMEOUT_MS)
    settle(tab)
    tab.locator("[data-testid='stSidebar'] a").nth(4).wait_for(timeout=STEP_TIMEOUT_MS)
    links = tab.locator("[data-testid='stSidebar'] a").all_inner_texts()
    assert [link.strip().split("\n")[-1] for link in links] == [  # after the icon's ligature name
        "Questions-réponses",
        "Leviers",
        "Documents",
        "Évaluation",
        "Journal d'audit",
    ]
    assert tab.locator("[data-testid='stSidebarNav']").count() == 0  # no second, automatic list
    assert tab.get_by_role("button", name="Deploy").count() == 0
    assert tab.title() == "Leviers · PTCE"
    assert tab.evaluate("document.documentElement.lang") == "fr"  # read with a French voice
    tab.close()


def test_ask_follow_a_source_rate_and_export_with_the_keyboard_alone(fresh_server: Server, context: Any) -> None:
    tab = context.new_page()
    tab.goto(fresh_server.url)
    chat_box(tab).wait_for(timeout=LOAD_TIMEOUT_MS)
    settle(tab)
    tab_to(tab, "textarea[placeholder^='Posez une question']")
    tab.keyboard.type(QUESTION)
    tab.keyboard.press("Enter")
    tab.locator("#t1-source-1").wait_for(timeout=STEP_TIMEOUT_MS)
    settle(tab)

    tab_to(tab, "a.ptce-ref")  # the answer's first [n]
    target = tab.evaluate("document.activeElement.getAttribute('href')")
    tab.keyboard.press("Enter")
    tab.wait_for_function("(t) => location.hash === t", arg=target, timeout=STEP_TIMEOUT_MS)

    before = feedback_rows(fresh_server.audit_db)
    tab_to(tab, "[data-testid='stFeedback'] button, [data-testid='stFeedback'] [role='radio']")
    tab.keyboard.press("Space")
    tab.wait_for_function("() => true")  # let the click reach the server
    for _ in range(100):
        if len(feedback_rows(fresh_server.audit_db)) > len(before):
            break
        tab.wait_for_timeout(300)
    assert len(feedback_rows(fresh_server.audit_db)) == len(before) + 1  # the rating was recorded

    tab_to(tab, "[data-testid='stDownloadButton'] button")  # « Exporter la réponse », Markdown by default
    with tab.expect_download(timeout=STEP_TIMEOUT_MS) as download:
        tab.keyboard.press("Enter")
    assert download.value.suggested_filename.endswith(".md")
    assert QUESTION in Path(download.value.path()).read_text(encoding="utf-8")
    tab.close()
