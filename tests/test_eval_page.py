"""The Evaluation page on a small hand-made report: tables, bars, failing cases, escaping."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ptce_assistant.answering.answer import Citation
from ptce_assistant.config import PROJECT_ROOT
from ptce_assistant.evals.metrics import passed
from ptce_assistant.evals.report import CaseRecord, EvalReport, HitRecord, RunInfo
from ptce_assistant.evals.runner import summarize_split

PAGE = PROJECT_ROOT / "app" / "views" / "3_Evaluation.py"
HOSTILE = "<script>alert('x')</script> **gras** [lien](http://example.com)"


def record(case_id: str, good: bool) -> CaseRecord:
    scores: dict[str, float | None] = {
        "hit@1": float(good),
        "hit@3": 1.0,
        "hit@5": 1.0,
        "mrr@10": 1.0 if good else 0.5,
        "evidence@400": 1.0,
        "evidence@800": 1.0,
        "evidence@1600": 1.0,
        "citation_validity": 1.0,
        "evidence_hit": float(good),
        "citation_precision": float(good),
        "abstention_accuracy": None,
        "false_abstention_rate": 0.0,
        "decision_accuracy": 1.0,
        "supported_sentence_rate": 1.0,
        "language_match": 1.0,
    }
    quote = "Soutenir l'emploi et les fonctions de coordination." if good else HOSTILE
    citation = Citation(
        n=1,
        chunk_id="doc#0001",
        doc_id="doc",
        title="Étude",
        breadcrumb=["Étude"],
        page=None,
        quote=quote,
        start=10,
        end=10 + len(quote),
    )
    return CaseRecord(
        split="dev",
        id=case_id,
        question=f"Question {case_id} <b>?</b>",
        answerable=True,
        lang="fr",
        tags=["section:leviers"],
        expected_quotes=["Soutenir l'emploi et les fonctions de coordination."],
        standalone_query=f"Question {case_id}",
        hits=[HitRecord(chunk_id="doc#0001", rank=1, dense_rank=1, lexical_rank=2, covers_expected=good)],
        answer=f"D'après l'étude : « {quote} » [1]",
        answer_lang="fr",
        mode="extractive",
        model="extractive",
        abstained=False,
        confidence=0.7,
        citations=[citation],
        invalid_citations=[],
        dangling_markers=[],
        verbatim_by_construction=True,
        scores=scores,
        passed={m: passed(m, v) for m, v in scores.items()},
        timings_ms={"retrieve": 40.0, "total": 42.0},
    )


@pytest.fixture
def reports_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cases = [record("dev-001", good=True), record("dev-002", good=False)]
    report = EvalReport(
        run=RunInfo(
            date="2026-11-26T10:00:00+00:00",
            git_commit=None,
            corpus_hash="abc123",
            index_generation="g1",
            chunks=20,
            embedder="e5",
            mode="extractive",
            llm="none",
            machine={"nproc": 2, "platform": "linux"},
            settings={"k": 5},
            baselines={},
            seconds=1.0,
        ),
        splits={"dev": summarize_split("dev", Path("evals/dev.jsonl"), cases, [])},
        cases=cases,
    )
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
