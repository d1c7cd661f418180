"""Ingestion: incremental by content hash, atomic generations, bad files rejected, index intact on failure."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import make_settings
from ptce_assistant.assistant import Assistant
from ptce_assistant.index import POINTER, CorpusIndex, current_generation

LEVIER = "Soutenir l'emploi et les fonctions de coordination"
SENTENCES = 29  # sentences of the study's 20 passages


class CountingEmbedder:
    """Wraps the real embedder and counts passages embedded (to prove unchanged text is skipped)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.embedded = 0
        self.fail_after: int | None = None

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def encode_passages(self, texts: list[str]) -> object:
        if self.fail_after is not None and self.embedded >= self.fail_after:
            raise RuntimeError("simulated crash in the middle of embedding")
        self.embedded += len(texts)
        return self.inner.encode_passages(texts)  # type: ignore[attr-defined]


@pytest.fixture
def counting(assistant: Assistant, corpus_copy: Path, tmp_path: Path) -> tuple[Assistant, CountingEmbedder]:
    helper = Assistant(make_settings(tmp_path, corpus_dir=corpus_copy, ingest_batch_size=4))
    counter = CountingEmbedder(assistant.embedder)
    helper.__dict__["embedder"] = counter
    return helper, counter


def test_ingest_then_reingest_embeds_nothing_new(counting: tuple[Assistant, CountingEmbedder]) -> None:
    helper, counter = counting
    first = helper.ingest()
    assert [o.status for o in first.outcomes] == ["added"]
    assert first.chunks_total == 20 and first.sentences_embedded == SENTENCES
    assert counter.embedded == 20 + SENTENCES  # each passage, then each of its sentences, once
    second = helper.ingest()
    assert [o.status for o in second.outcomes] == ["unchanged"]
    assert counter.embedded == 20 + SENTENCES  # nothing re-embedded
    assert second.generation == first.generation


def test_changed_document_is_replaced_and_deleted_one_removed(
    counting: tuple[Assistant, CountingEmbedder], corpus_copy: Path
) -> None:
    helper, counter = counting
    helper.ingest()
    extra = corpus_copy / "note.md"
    extra.write_text("# Note\n\nLes tiers-lieux ruraux accueillent des PTCE naissants.\n", encoding="utf-8")
    report = helper.ingest()
    assert {o.path.rsplit("/", 1)[-1]: o.status for o in report.outcomes} == {
        "note.md": "added",
        "rtes-2014-ptce-role-des-collectivites.txt": "unchanged",
    }
    assert counter.embedded == 20 + SENTENCES + 2  # the new note's passage and its one sentence only
    extra.write_text("# Note\n\nLes tiers-lieux urbains accueillent aussi des PTCE.\n", encoding="utf-8")
    assert {o.status for o in helper.ingest().outcomes} == {"updated", "unchanged"}
    hits = helper.search("tiers-lieux urbains", k=3).hits
    assert any("urbains" in h.chunk.text for h in hits)
    assert not any("ruraux accueillent" in c.text for c in helper.index.chunks)
    extra.unlink()
    report = helper.ingest()
    assert "removed" in {o.status for o in report.outcomes}
    assert {c.doc_id for c in helper.index.chunks} == {"rtes-2014-ptce-role-des-collectivites.txt"}
    assert helper.index.vectors.count() == len(helper.index.chunks) == 20


def test_bad_file_is_rejected_and_the_rest_ingested(
    counting: tuple[Assistant, CountingEmbedder], corpus_copy: Path
) -> None:
    helper, _ = counting
    (corpus_copy / "vide.txt").write_bytes(b"")
    (corpus_copy / "image.pdf").write_bytes(b"%PDF-1.4 garbage")
    report = helper.ingest()
    rejected = {Path(o.path).name: o.error for o in report.rejected}
    assert set(rejected) == {"vide.txt", "image.pdf"}
    assert all(rejected.values())
    assert report.chunks_total == 20


def test_a_failed_update_leaves_the_previous_index_intact(
    counting: tuple[Assistant, CountingEmbedder], corpus_copy: Path
) -> None:
    helper, counter = counting
    first = helper.ingest()
    before = helper.search(LEVIER, k=1).hits[0].chunk.chunk_id
    study = corpus_copy / "rtes-2014-ptce-role-des-collectivites.txt"
    study.write_text(study.read_text(encoding="utf-8") + "\n\nUn paragraphe ajouté.\n", encoding="utf-8")
    counter.fail_after = counter.embedded + 4
    with pytest.raises(RuntimeError, match="simulated crash"):
        helper.ingest()
    root = helper.settings.index_dir
    assert current_generation(root) == first.generation
    assert not list(root.glob(".staging-*"))
    reopened = CorpusIndex(helper.settings, helper.embedder)  # type: ignore[arg-type]
    assert reopened.vectors.count() == len(reopened.chunks) == 20
    assert helper.search(LEVIER, k=1).hits[0].chunk.chunk_id == before
    counter.fail_after = None
    assert {o.status for o in helper.ingest().outcomes} == {"updated"}


def test_a_leftover_staging_folder_is_cleaned_and_never_read(counting: tuple[Assistant, CountingEmbedder]) -> None:
    helper, _ = counting
    helper.ingest()
    root = helper.settings.index_dir
    (root / ".staging-gen-dead").mkdir()
    (root / ".staging-gen-dead" / "manifest.json").write_text("{broken", encoding="utf-8")
    helper.ingest(rebuild=True)
    assert not (root / ".staging-gen-dead").exists()
    assert json.loads((root / POINTER).read_text())["generation"].startswith("gen-")


def test_rebuild_reembeds_everything_and_keeps_one_previous_generation(
    counting: tuple[Assistant, CountingEmbedder],
) -> None:
    helper, counter = counting
    helper.ingest()
    helper.ingest(rebuild=True)
    helper.ingest(rebuild=True)
    assert counter.embedded == 3 * (20 + SENTENCES)
    generations = sorted(p.name for p in helper.settings.index_dir.glob("gen-*"))
    assert len(generations) == 2  # the current one and the one readers may still hold


def test_missing_index_says_what_to_run(tmp_path: Path) -> None:
    from ptce_assistant.errors import IndexUnavailableError

    with pytest.raises(IndexUnavailableError, match="ptce ingest"):
        CorpusIndex(make_settings(tmp_path))


def test_readers_see_a_new_generation_after_refresh(
    counting: tuple[Assistant, CountingEmbedder], corpus_copy: Path
) -> None:
    helper, _ = counting
    helper.ingest()
    reader = CorpusIndex(helper.settings, helper.embedder)  # type: ignore[arg-type]
    (corpus_copy / "ajout.txt").write_text("Un document ajouté sur les coopératives.\n", encoding="utf-8")
    os.utime(corpus_copy)
    before = reader.view
    assert reader.refresh() is before  # nothing changed: the same view
    helper.ingest()
    after = reader.refresh()
    assert after is not before and after.generation != before.generation
    assert "ajout.txt" in reader.manifest.documents
    # The old view stays whole for a search that started before the flip.
    assert "ajout.txt" not in before.manifest.documents
    assert len(after.chunks) == len(before.chunks) + 1 == after.vectors.count()


def test_switching_embedding_precision_rebuilds_the_vectors(tmp_path: Path) -> None:
    from ptce_assistant.config import embedder_name

    float32 = make_settings(tmp_path)
    Assistant(float32).ingest()
    int8 = float32.model_copy(update={"embedding_precision": "int8"})
    report = Assistant(int8).ingest()
    reader = Assistant(int8)
    assert reader.index.manifest.embedder == embedder_name(int8) == f"{float32.embedding_model}@int8"
    assert report.chunks_embedded == reader.index.vectors.count() == len(reader.index.chunks) > 0


def test_a_large_ingestion_embeds_in_worker_processes_with_the_same_vectors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from ptce_assistant import embeddings

    pools: list[int] = []
    original = embeddings.EmbeddingPool.__init__

    def spy(self: embeddings.EmbeddingPool, settings: object, workers: int) -> None:
        pools.append(workers)
        original(self, settings, workers)  # type: ignore[arg-type]

    monkeypatch.setattr(embeddings.EmbeddingPool, "__init__", spy)
    settings = make_settings(tmp_path, ingest_workers=2, ingest_pool_min_chunks=1, ingest_batch_size=4)
    report = Assistant(settings).ingest()
    assert pools == [2, 2]  # the 20 passages, then their sentences, went through two worker processes
    reader = Assistant(settings)
    chunks = reader.index.chunks
    assert report.chunks_embedded == reader.index.vectors.count() == len(chunks) == 20
    stored = reader.index.vectors.collection.get(ids=[c.chunk_id for c in chunks], include=["embeddings"])
    by_id = dict(zip(stored["ids"], stored["embeddings"], strict=True))
    expected = reader.embedder.encode_passages([c.indexed_text() for c in chunks])
    got = np.array([by_id[c.chunk_id] for c in chunks])
    assert np.allclose(got, expected, atol=1e-4)  # each passage stored with its own vector, in order
    # Below the threshold the same ingestion stays in-process.
    assert embeddings.ingest_workers(settings.model_copy(update={"ingest_pool_min_chunks": 21}), 20) == 1


def test_new_collections_search_the_graph_widely(assistant: Assistant) -> None:
    configuration = assistant.index.vectors.collection.configuration
    assert configuration["hnsw"]["space"] == "cosine" and configuration["hnsw"]["ef_search"] == 500


def test_an_index_from_an_older_version_gets_the_search_breadth_without_re_embedding(
    counting: tuple[Assistant, CountingEmbedder],
) -> None:
    import chromadb

    helper, counter = counting
    first = helper.ingest()
    folder = helper.settings.index_dir / first.generation
    # Make it look like an index built before ef_search was set: Chroma's default breadth, no field.
    client = chromadb.PersistentClient(path=str(folder / "chroma"))
    client.get_collection(helper.settings.chroma_collection).modify(configuration={"hnsw": {"ef_search": 100}})
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    del manifest["ef_search"]
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    upgraded = helper.ingest()
    assert upgraded.generation != first.generation  # a new generation, swapped atomically
    assert [o.status for o in upgraded.outcomes] == ["unchanged"]
    assert upgraded.chunks_embedded == upgraded.sentences_embedded == 0  # the vectors were copied, not re-embedded
    assert counter.embedded == 20 + SENTENCES
    reader = CorpusIndex(helper.settings, helper.embedder)  # type: ignore[arg-type]
    assert reader.manifest.ef_search == 500
    assert reader.vectors.collection.configuration["hnsw"]["ef_search"] == 500
    assert reader.vectors.count() == 20
    assert helper.ingest().generation == upgraded.generation  # and then nothing more to do


def test_an_index_without_sentence_vectors_gets_them_without_re_embedding_its_passages(
    counting: tuple[Assistant, CountingEmbedder],
) -> None:
    import shutil

    helper, counter = counting
    first = helper.ingest()
    shutil.rmtree(helper.settings.index_dir / first.generation / "sentences")  # as built before sentence vectors
    upgraded = helper.ingest()
    assert upgraded.generation != first.generation
    assert upgraded.chunks_embedded == 0 and upgraded.sentences_embedded == SENTENCES
    assert counter.embedded == 20 + 2 * SENTENCES


def test_sentence_vectors_are_the_sentences_own(assistant: Assistant) -> None:
    import numpy as np

    from ptce_assistant.text import sentence_spans

    chunk = next(c for c in assistant.index.chunks if c.text.startswith("Le stade d'émergence"))
    spans, vectors = assistant.index.sentences.of_chunk(chunk) or ([], None)
    assert spans == sentence_spans(chunk.text) and len(spans) == 2
    expected = assistant.embedder.encode_passages([chunk.text[s:e] for s, e in spans])
    assert np.allclose(vectors, expected, atol=1e-4)
