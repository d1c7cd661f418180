"""The quality measures of benchmarks/scale.py: study hits, any-document hits, candidate depth."""

from __future__ import annotations

from types import SimpleNamespace

from scale import DEEP, depth_diagnostic, study_rank
from synthetic import STUDY

from ptce_assistant.assistant import Assistant
from ptce_assistant.config import PROJECT_ROOT
from ptce_assistant.evals.dataset import load_cases
from ptce_assistant.evals.metrics import first_covering_rank

QUOTE = "le PTCE est un outil de développement économique territorial"


def fake_hit(rank: int, doc_id: str, text: str) -> SimpleNamespace:
    return SimpleNamespace(rank=rank, chunk=SimpleNamespace(doc_id=doc_id, text=text))


def test_a_distractor_quoting_the_study_counts_only_as_an_any_document_hit() -> None:
    hits = [
        fake_hit(1, "rapport-00001.md", f"À Lyon, {QUOTE} selon l'association."),
        fake_hit(2, "rapport-00002.md", "Un paragraphe sans rapport avec la question."),
        fake_hit(3, STUDY.name, f"Pour les élus, {QUOTE}."),
    ]
    assert first_covering_rank([h.chunk.text for h in hits], [QUOTE]) == 1  # scale.py's any-document rank
    assert study_rank(hits, [QUOTE]) == 3
    assert study_rank(hits[:2], [QUOTE]) is None


def test_the_depth_diagnostic_finds_every_study_passage_when_all_chunks_are_candidates(assistant: Assistant) -> None:
    cases = [case for case in load_cases(PROJECT_ROOT / "evals" / "dev.jsonl") if case.answerable][:12]
    assert len(assistant.index.chunks) < DEEP  # the bundled corpus: every chunk is a dense candidate
    found = depth_diagnostic(assistant, cases)
    assert found[f"study_in_dense_top{DEEP}"] == 1.0
    assert found["study_in_dense_top30"] <= found[f"study_in_dense_top{DEEP}"]
    assert found["study_in_lexical_top30"] <= found[f"study_in_lexical_top{DEEP}"]
    assert 0.0 < found[f"deep{DEEP}_hit@1"] <= found[f"deep{DEEP}_hit@3"] <= found[f"deep{DEEP}_hit@5"] <= 1.0
