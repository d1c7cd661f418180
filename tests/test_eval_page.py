"""The Evaluation page on a small hand-made report: tables, bars, failing cases, escaping."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from eval_reports import eval_report, record
from ptce_assistant.config import PROJECT_ROOT

PAGE = PROJECT_ROOT / "app" / "views" / "3_Evaluation.py"


@pytest.fixture
def reports_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    report = eval_report([record("dev-001", good=True), record("dev-002", good=False)])
    folder = tmp_path / "reports" / "extractive"
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(report.model_dump_json(), encoding="utf-8")
    monkeypatch.setenv("PTCE_EVAL_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "app"))  # pages import the app's `ui` module
    return tmp_path / "reports"


def test_page_shows_metrics_and_the_failing_case(reports_dir: Path, on_this_machine: None) -> None:
    page = AppTest.from_file(str(PAGE), default_timeout=60).run()
    assert not page.exception
    assert page.selectbox[0].options == ["extractive"]
    metrics = page.table[0].value
    first = metrics.iloc[0]
    assert first["métrique"] == "hit@1" and first["assistant"].startswith("0.500")
    assert page.selectbox(key="case-dev").options == ["dev-002"]  # the passing case is not listed
    html = "".join(m.value for m in page.markdown)
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert "<b>?</b>" not in html


def test_page_without_reports_says_how_to_make_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_this_machine: None
) -> None:
    monkeypatch.setenv("PTCE_EVAL_REPORTS_DIR", str(tmp_path))
    page = AppTest.from_file(str(PAGE), default_timeout=60).run()
    assert not page.exception
    assert "ptce eval" in page.info[0].value
