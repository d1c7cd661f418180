"""The report's schema: every committed report.json still loads, schema 1's flat cases upgraded into the Answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval_reports import eval_report, record
from ptce_assistant.answering.answer import Citation
from ptce_assistant.config import PROJECT_ROOT
from ptce_assistant.evals.records import SCHEMA_VERSION, load_report

COMMITTED = sorted((PROJECT_ROOT / "evals" / "reports").glob("*/report.json"))
FLAT_CASE = {  # a case as schema 1 wrote it: the answer's fields beside the case's
    "split": "dev",
    "id": "dev-001",
    "question": "Qui a publié l'étude ?",
    "history": [],
    "answerable": True,
    "lang": "fr",
    "tags": ["section:intro"],
    "expected_quotes": ["a publié en mars 2014 une étude"],
    "standalone_query": "Qui a publié l'étude sur les PTCE ?",
    "hits": [{"chunk_id": "doc#0000", "rank": 1, "dense_rank": 2, "lexical_rank": 1, "covers_expected": True}],
    "answer": "Le RTES « a publié en mars 2014 une étude » [1]",
    "answer_lang": "en",
    "mode": "generative",
    "model": "qwen",
    "abstained": False,
    "confidence": 0.61,
    "citations": [
        {
            "n": 1,
            "chunk_id": "doc#0000",
            "doc_id": "doc",
            "title": "Étude",
            "breadcrumb": ["Étude"],
            "page": None,
            "quote": "a publié en mars 2014 une étude",
            "start": 3,
            "end": 34,
        }
    ],
    "invalid_citations": [],
    "dangling_markers": [],
    "verbatim_by_construction": False,
    "notice": "le modèle manque",
    "scores": {"hit@1": 1.0},
    "passed": {"hit@1": True},
    "timings_ms": {"total": 12.5},
    "baselines": {},
}


def test_a_schema_1_case_is_read_into_the_answer(tmp_path: Path) -> None:
    report = json.loads(eval_report([record("dev-002", good=True)]).model_dump_json())
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report | {"schema_version": 1, "cases": [FLAT_CASE]}), encoding="utf-8")
    loaded = load_report(path)
    assert loaded.schema_version == SCHEMA_VERSION
    answer = loaded.cases[0].answer
    assert (answer.question, answer.standalone_query, answer.answer) == (
        FLAT_CASE["question"],
        FLAT_CASE["standalone_query"],
        FLAT_CASE["answer"],
    )
    assert (answer.lang, answer.mode, answer.model, answer.abstained, answer.confidence, answer.notice) == (
        "en",
        "generative",
        "qwen",
        False,
        0.61,
        "le modèle manque",
    )
    assert answer.timings_ms == {"total": 12.5} and answer.citations[0].quote == "a publié en mars 2014 une étude"
    assert loaded.cases[0].hits[0].chunk_id == "doc#0000" and loaded.cases[0].passed == {"hit@1": True}


def test_a_report_reads_back_what_it_wrote(tmp_path: Path) -> None:
    report = eval_report([record("dev-001", good=True), record("dev-002", good=False)])
    path = tmp_path / "report.json"
    path.write_text(report.model_dump_json(), encoding="utf-8")
    assert load_report(path) == report


@pytest.mark.parametrize("path", COMMITTED, ids=lambda path: path.parent.name)
def test_every_committed_report_loads_with_its_answers(path: Path) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    report = load_report(path)
    assert report.schema_version == SCHEMA_VERSION and len(report.cases) == len(raw["cases"]) > 0
    for written, case in zip(raw["cases"], report.cases, strict=True):
        answer = written["answer"] if raw["schema_version"] > 1 else written | {"lang": written["answer_lang"]}
        shown = case.answer
        assert (shown.answer, shown.standalone_query, shown.lang, shown.abstained, shown.confidence) == (
            answer["answer"],
            answer["standalone_query"],
            answer["lang"],
            answer["abstained"],
            answer["confidence"],
        )
        assert shown.citations == [Citation.model_validate(c) for c in answer["citations"]]
        assert shown.timings_ms == answer["timings_ms"] and case.passed == written["passed"]


def test_the_committed_reports_are_found() -> None:
    assert {path.parent.name for path in COMMITTED} >= {"extractive", "generative-local"}
