"""A small hand-made eval report for the tests of its renderings (Evaluation page, report.html)."""

from __future__ import annotations

from pathlib import Path

from factories import answer
from ptce_assistant.answering.answer import Citation
from ptce_assistant.evals.metrics import passed
from ptce_assistant.evals.records import CaseRecord, EvalReport, HitRecord, RunInfo
from ptce_assistant.evals.runner import summarize_split

HOSTILE = "<script>alert('x')</script> **gras** [lien](http://example.com)"


def record(case_id: str, good: bool) -> CaseRecord:
    """A dev case the assistant passes (good) or fails by citing a hostile quote."""
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
        hits=[HitRecord(chunk_id="doc#0001", rank=1, dense_rank=1, lexical_rank=2, covers_expected=good)],
        answer=answer(
            f"D'après l'étude : « {quote} » [1]",
            [citation],
            question=f"Question {case_id} <b>?</b>",
            standalone_query=f"Question {case_id}",
            confidence=0.7,
            timings_ms={"retrieve": 40.0, "total": 42.0},
        ),
        invalid_citations=[],
        dangling_markers=[],
        verbatim_by_construction=True,
        scores=scores,
        passed={m: passed(m, v) for m, v in scores.items()},
    )


def eval_report(cases: list[CaseRecord]) -> EvalReport:
    """An extractive report of the dev split made of `cases`."""
    return EvalReport(
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
