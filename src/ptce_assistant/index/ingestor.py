"""The ingestor: builds the next generation of the index from the current one and the files on disk.

Each ingestion writes a complete new *generation* folder next to the current one (copying the
previous vectors so unchanged documents are never re-embedded), then flips the `CURRENT` pointer
with an atomic rename. A crash or Ctrl-C before the flip leaves the previous generation untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from filelock import FileLock, Timeout

from ptce_assistant.chunking import CHUNKER_VERSION, Chunk, chunk_document
from ptce_assistant.config import Settings
from ptce_assistant.documents import Document, discover, load_document
from ptce_assistant.embeddings import encode_batches
from ptce_assistant.errors import DocumentError, PtceError
from ptce_assistant.index.bm25 import LexicalIndex
from ptce_assistant.index.records import (
    POINTER,
    DocumentOutcome,
    DocumentRecord,
    IngestReport,
    Manifest,
    ProgressCallback,
    current_generation,
    read_generation,
)
from ptce_assistant.index.vectors import EF_SEARCH, VectorStore, release
from ptce_assistant.sentences import SentenceTable, document_sentences, table_path

if TYPE_CHECKING:
    from ptce_assistant.embeddings import SentenceEmbeddings

T = TypeVar("T")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_atomic(path: Path, data: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable: after a power cut the new name, not the old, is found."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _fsync_tree(root: Path) -> None:
    """Flush every file of a generation, and the folders naming them, before the pointer names it."""
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        elif path.is_dir():
            _fsync_dir(path)


def _batched(items: Sequence[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class Ingestor:
    """Builds the next generation from the current one and the files on disk."""

    def __init__(
        self, settings: Settings, embedder: SentenceEmbeddings, progress: ProgressCallback | None = None
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.progress = progress or (lambda stage, done, total: None)
        self.root = settings.index_dir

    def run(self, paths: Sequence[Path] | None = None, rebuild: bool = False) -> IngestReport:
        """Ingest `paths` (default: the corpus folder); returns what happened to each file."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(self.root / ".ingest.lock"), timeout=self.settings.ingest_lock_timeout_s):
                return self._run_locked(paths, rebuild)
        except Timeout:
            raise PtceError("une autre ingestion est en cours sur cet index : réessayez plus tard") from None

    def _run_locked(self, paths: Sequence[Path] | None, rebuild: bool) -> IngestReport:
        started = time.perf_counter()
        self._clean_abandoned()
        live_gen = current_generation(self.root)
        previous_gen = None if rebuild else live_gen
        previous = self._read_previous(previous_gen)
        if previous and previous[0].embedder != self.embedder.name:
            previous_gen, previous = None, None  # another embedder: vectors are not comparable
        manifest = previous[0] if previous else None
        old_chunks = previous[1] if previous else []

        report = IngestReport()
        corpus_dir = self.settings.corpus_dir
        files = discover(paths if paths else [corpus_dir])
        loaded: dict[str, Document] = {}
        keep: dict[str, DocumentRecord] = dict(manifest.documents) if manifest else {}
        seen: set[str] = set()
        for i, path in enumerate(files, start=1):
            self.progress("lecture", i, len(files))
            outcome = self._load(path, corpus_dir, keep, loaded)
            if outcome.doc_id:
                seen.add(outcome.doc_id)
            report.outcomes.append(outcome)
        removed = [d for d, rec in keep.items() if d not in seen and d not in loaded and self._vanished(rec, paths)]
        for doc_id in removed:
            report.outcomes.append(DocumentOutcome(path=keep[doc_id].path, doc_id=doc_id, status="removed"))
            del keep[doc_id]

        changed = set(loaded)
        # Nothing to do, unless the index predates this version's search breadth: then a new generation
        # gets it (nothing is re-embedded).
        if (
            manifest
            and not changed
            and not removed
            and manifest.ef_search == EF_SEARCH
            and self._has_sentence_tables(previous_gen, keep.values())
        ):
            report.seconds = time.perf_counter() - started
            report.chunks_total = len(old_chunks)
            report.generation = previous_gen
            return report

        new_chunks = {doc_id: chunk_document(doc) for doc_id, doc in loaded.items()}
        generation = f"gen-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        staging = self.root / f".staging-{generation}"
        staging.mkdir()
        store: VectorStore | None = None
        try:
            if previous_gen and not self.settings.chroma_host:
                shutil.copytree(self.root / previous_gen / "chroma", staging / "chroma")
            store = VectorStore(self.settings, staging, generation, self.embedder)
            if previous_gen and self.settings.chroma_host:
                store.copy_from(VectorStore(self.settings, self.root / previous_gen, previous_gen, None, create=False))
            store.delete_documents(set(removed) | (changed & {c.doc_id for c in old_chunks}))
            fresh = [c for doc_id in sorted(new_chunks) for c in new_chunks[doc_id]]
            # Batches of similar length pad less: about 25% fewer CPU-seconds (benchmarks/scale.py corpus).
            by_length = sorted(fresh, key=lambda c: len(c.indexed_text()))
            batches = list(_batched(by_length, self.settings.ingest_batch_size))
            texts = [[c.indexed_text() for c in batch] for batch in batches]
            done = 0
            for batch, vectors in zip(batches, encode_batches(self.embedder, self.settings, texts), strict=True):
                store.add(batch, vectors)
                done += len(batch)
                self.progress("embedding", done, len(fresh))
            all_chunks = [c for c in old_chunks if c.doc_id in keep and c.doc_id not in changed] + fresh
            all_chunks.sort(key=lambda c: (c.doc_id, c.start))
            for doc_id, doc in loaded.items():
                keep[doc_id] = DocumentRecord(
                    doc_id=doc_id,
                    path=doc.path,
                    title=doc.title,
                    sha256=doc.sha256,
                    kind=doc.kind,
                    metadata=doc.metadata,
                    n_chunks=len(new_chunks[doc_id]),
                    n_pages=len(doc.pages),
                    ingested_at=_now(),
                )
            report.sentences_embedded = self._write_sentence_tables(staging, keep, loaded, all_chunks, previous_gen)
            self._write_generation(staging, generation, keep, all_chunks, loaded, previous_gen)
            report.chunks_embedded = len(fresh)
            report.chunks_total = len(all_chunks)
            if store.count() != len(all_chunks):
                raise PtceError(f"index incohérent ({store.count()} vecteurs pour {len(all_chunks)} passages)")
            release(store)
            _fsync_tree(staging)
            os.replace(staging, self.root / generation)
            _fsync_dir(self.root)
            _write_atomic(self.root / POINTER, json.dumps({"generation": generation}))
        except BaseException:
            if store is not None and store.remote:
                store.drop()
            release(store)
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self._prune(keep_generations={generation, live_gen})
        report.generation = generation
        report.seconds = time.perf_counter() - started
        return report

    def _load(
        self, path: Path, corpus_dir: Path, known: dict[str, DocumentRecord], loaded: dict[str, Document]
    ) -> DocumentOutcome:
        from ptce_assistant.documents import doc_id_for

        doc_id = doc_id_for(path, corpus_dir)
        try:
            document = load_document(
                path, corpus_dir, self.settings.max_pdf_pages, max_bytes=self.settings.max_upload_mb * 1_000_000 * 10
            )
        except DocumentError as exc:
            # The previous version (if any) stays indexed: a bad update never loses data.
            return DocumentOutcome(
                path=str(path), doc_id=doc_id if doc_id in known else None, status="rejected", error=exc.reason
            )
        record = known.get(document.doc_id)
        if record and record.sha256 == document.sha256:
            return DocumentOutcome(path=str(path), doc_id=document.doc_id, status="unchanged", chunks=record.n_chunks)
        loaded[document.doc_id] = document
        return DocumentOutcome(
            path=str(path),
            doc_id=document.doc_id,
            status="updated" if record else "added",
            chunks=len(chunk_document(document)),
        )

    def _vanished(self, record: DocumentRecord, paths: Sequence[Path] | None) -> bool:
        """A document leaves the index when its file is gone, or (full sync) left the corpus folder."""
        source = Path(record.path)
        if not source.exists():
            return True
        if paths:
            return False
        return not source.resolve().is_relative_to(self.settings.corpus_dir.resolve())

    def _read_previous(self, generation: str | None) -> tuple[Manifest, list[Chunk]] | None:
        if generation is None:
            return None
        try:
            manifest, chunks = read_generation(self.root / generation)
        except (OSError, ValueError):
            return None
        if manifest.chunker != CHUNKER_VERSION:
            return None
        return manifest, chunks

    def _write_generation(
        self,
        staging: Path,
        generation: str,
        documents: dict[str, DocumentRecord],
        chunks: list[Chunk],
        loaded: dict[str, Document],
        previous_gen: str | None,
    ) -> None:
        texts = staging / "texts"
        texts.mkdir()
        for record in documents.values():
            target = texts / f"{record.sha256}.txt"
            if record.doc_id in loaded:
                target.write_text(loaded[record.doc_id].text, encoding="utf-8")
            elif previous_gen:
                shutil.copyfile(self.root / previous_gen / "texts" / target.name, target)
        with open(staging / "chunks.jsonl", "w", encoding="utf-8") as handle:
            for chunk in chunks:
                handle.write(chunk.model_dump_json() + "\n")
        LexicalIndex.build(chunks).save(staging / "lexical")
        manifest = Manifest(
            generation=generation,
            embedder=self.embedder.name,
            ef_search=EF_SEARCH,  # VectorStore gave the collection this breadth
            created_at=_now(),
            documents=dict(sorted(documents.items())),
        )
        (staging / "manifest.json").write_text(manifest.model_dump_json(indent=2), encoding="utf-8")

    def _has_sentence_tables(self, generation: str | None, records: Iterable[DocumentRecord]) -> bool:
        """Whether a generation holds the sentence table of every document (older indexes do not)."""
        return generation is not None and all(table_path(self.root / generation, r.sha256).is_file() for r in records)

    def _write_sentence_tables(
        self,
        staging: Path,
        documents: dict[str, DocumentRecord],
        loaded: dict[str, Document],
        chunks: Sequence[Chunk],
        previous_gen: str | None,
    ) -> int:
        """One sentence table per document: copied when its text is unchanged, else embedded now (returns how
        many sentences were embedded)."""
        (staging / "sentences").mkdir()
        to_embed: list[tuple[str, list[tuple[int, int, str]]]] = []
        for doc_id, record in documents.items():
            old = table_path(self.root / previous_gen, record.sha256) if previous_gen else None
            if doc_id not in loaded and old is not None and old.is_file():
                shutil.copyfile(old, table_path(staging, record.sha256))
                continue
            doc_chunks = [c for c in chunks if c.doc_id == doc_id]
            to_embed.append((record.sha256, document_sentences(doc_chunks)))
        texts = [text for _, sentences in to_embed for _, _, text in sentences]
        batches = [list(b) for b in _batched(texts, self.settings.ingest_batch_size)]
        done = 0
        vectors: list[np.ndarray] = []
        for batch_vectors in encode_batches(self.embedder, self.settings, batches):
            vectors.append(batch_vectors)
            done += len(batch_vectors)
            self.progress("phrases", done, len(texts))
        matrix = np.concatenate(vectors) if vectors else np.empty((0, self.embedder.dim), dtype=np.float32)
        offset = 0
        for sha, sentences in to_embed:
            starts = np.array([s for s, _, _ in sentences], dtype=np.int64)
            ends = np.array([e for _, e, _ in sentences], dtype=np.int64)
            SentenceTable(starts, ends, matrix[offset : offset + len(sentences)]).save(table_path(staging, sha))
            offset += len(sentences)
        return len(texts)

    def _clean_abandoned(self) -> None:
        """Staging folders left by a killed run are never named by the pointer: remove them."""
        for leftover in self.root.glob(".staging-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def _prune(self, keep_generations: set[str | None]) -> None:
        """Keep the new generation and the one before it (readers may still have it open)."""
        for folder in self.root.glob("gen-*"):
            if folder.name not in keep_generations:
                if self.settings.chroma_host:
                    with contextlib.suppress(Exception):
                        VectorStore(self.settings, folder, folder.name, None, create=False).drop()
                shutil.rmtree(folder, ignore_errors=True)
