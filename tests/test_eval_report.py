"""report.html is rendered from a template that escapes every text users and the corpus wrote."""

from __future__ import annotations

from eval_reports import eval_report, record
from ptce_assistant.conversation import Turn
from ptce_assistant.evals.records import EvalReport, HitRecord
from ptce_assistant.evals.report import render_html, render_markdown

SCRIPT = "<script>alert('x')</script>"


def hostile_report() -> EvalReport:
    """One failing case whose question, history, quotes, answer, passage and a setting all carry a <script>."""
    failing = record("dev-001", good=False)  # it cites a quote with a <script>
    case = failing.model_copy(
        update={
            "question": f"Qui a écrit {SCRIPT} ?",
            "history": [Turn(role="user", content=f"Avant {SCRIPT}")],
            "expected_quotes": [f"Attendu {SCRIPT} & « cité »"],
            "answer": failing.answer.model_copy(update={"standalone_query": f"Reformulée {SCRIPT}"}),
            "hits": [HitRecord(chunk_id=f"doc{SCRIPT}#0001", rank=1, covers_expected=False)],
        }
    )
    report = eval_report([case])
    report.run.settings = {"k": SCRIPT}
    return report


def test_the_html_report_escapes_what_users_and_the_corpus_wrote() -> None:
    report = hostile_report()
    assert report.failing_cases("dev")  # the case is shown in full: history, quotes, answer, passages
    figures = {name: b"png" for name in ("tags-dev.png", "latency.png", "confidence.png", "reliability.png")}
    page = render_html(report, figures)
    assert "<script" not in page
    # question, history, standalone query, expected quote, answer, citation, passage's chunk id, setting
    assert page.count("&lt;script&gt;") == 8
    assert "&amp; « cité »" in page
    assert page.count("data:image/png;base64,cG5n") == 4


def test_the_markdown_report_lists_the_failing_case() -> None:
    markdown = render_markdown(hostile_report())
    assert "### dev: failing cases (1)" in markdown
    assert f"- `dev-001` Qui a écrit {SCRIPT} ?" in markdown
