"""The persisted index: Chroma vectors, a French BM25 index and a manifest, swapped atomically.

Each ingestion writes a complete new *generation* folder next to the current one (copying the
previous vectors so unchanged documents are never re-embedded), then flips the `CURRENT` pointer
with an atomic rename. A crash or Ctrl-C before the flip leaves the previous generation untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
from filelock import FileLock, Timeout
from pydantic import BaseModel, Field

from ptce_assistant.chunking import CHUNKER_VERSION, Chunk, chunk_document
from ptce_assistant.config import Settings
from ptce_assistant.documents import Document, discover, load_document
from ptce_assistant.embeddings import encode_batches
from ptce_assistant.errors import DocumentError, IndexUnavailableError, PtceError
from ptce_assistant.lexical import bm25_idf, french_terms
from ptce_assistant.sentences import SentenceTable, SentenceVectors, document_sentences, table_path

if TYPE_CHECKING:
    from ptce_assistant.embeddings import SentenceEmbeddings

POINTER = "CURRENT"
T = TypeVar("T")
# Chroma's default ef_search (100) found 82% of the exact top 30 among 100,000 look-alike chunks; 500
# found 97% for ~8 ms a query (benchmarks/hnsw_recall.py). An older index gets it at its next `ptce ingest`.
_EF_SEARCH = 500
HNSW_CONFIGURATION: dict[str, Any] = {"hnsw": {"space": "cosine", "ef_search": _EF_SEARCH}}
FORMAT_VERSION = 1


class DocumentRecord(BaseModel):
    """What the manifest remembers of an ingested document."""

    doc_id: str
    path: str
    title: str
    sha256: str
    kind: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    n_chunks: int
    n_pages: int = 0
    ingested_at: str


class Manifest(BaseModel):
    """The index's table of contents: documents by content hash, and how they were embedded."""

    format: int = FORMAT_VERSION
    generation: str
    embedder: str
    chunker: str = CHUNKER_VERSION
    ef_search: int | None = None  # the HNSW search breadth its collection was given (None: before it was set)
    created_at: str
    documents: dict[str, DocumentRecord] = Field(default_factory=dict)

    @property
    def corpus_hash(self) -> str:
        """One hash for the whole indexed corpus (recorded with every answer)."""
        import hashlib

        joined = "\n".join(f"{k}:{v.sha256}" for k, v in sorted(self.documents.items()))
        return hashlib.sha256(joined.encode()).hexdigest()[:16]


Status = Literal["added", "updated", "unchanged", "removed", "rejected"]


class DocumentOutcome(BaseModel):
    """The result of one file in an ingestion run."""

    path: str
    doc_id: str | None = None
    status: Status
    chunks: int = 0
    error: str | None = None


class IngestReport(BaseModel):
    """Per-document results and throughput of an ingestion run."""

    outcomes: list[DocumentOutcome] = Field(default_factory=list)
    chunks_embedded: int = 0
    sentences_embedded: int = 0
    chunks_total: int = 0
    seconds: float = 0.0
    generation: str | None = None

    @property
    def rejected(self) -> list[DocumentOutcome]:
        """Files that could not be ingested."""
        return [o for o in self.outcomes if o.status == "rejected"]

    @property
    def chunks_per_second(self) -> float:
        """Embedding throughput of the run."""
        return self.chunks_embedded / self.seconds if self.seconds else 0.0


ProgressCallback = Callable[[str, int, int], None]


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


class _ChromaEmbeddingFunction:
    """Chroma's explicit embedding function: our embedder (Chroma's default would download ONNX)."""

    def __init__(self, embedder: SentenceEmbeddings | None) -> None:
        self._embedder = embedder

    def __call__(self, input: list[str]) -> list[np.ndarray]:
        if self._embedder is None:
            raise IndexUnavailableError("aucun modèle d'embedding n'est chargé pour cette collection")
        return list(self._embedder.encode_passages(list(input)))

    def embed_query(self, input: list[str]) -> list[np.ndarray]:
        if self._embedder is None:
            raise IndexUnavailableError("aucun modèle d'embedding n'est chargé pour cette collection")
        return [self._embedder.encode_query(text) for text in input]

    @staticmethod
    def name() -> str:
        return "ptce-assistant"

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine"]

    def get_config(self) -> dict[str, Any]:
        return {"embedder": self._embedder.name if self._embedder else None}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> _ChromaEmbeddingFunction:
        return _ChromaEmbeddingFunction(None)

    def is_legacy(self) -> bool:
        return False


class VectorStore:
    """A Chroma collection, embedded in a generation folder or on a Chroma server."""

    def __init__(
        self,
        settings: Settings,
        generation_dir: Path,
        generation: str,
        embedder: SentenceEmbeddings | None,
        create: bool = True,
    ) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings
        from chromadb.errors import NotFoundError

        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        self.remote = settings.chroma_host is not None
        self._server = f"{settings.chroma_host}:{settings.chroma_port}"
        with self._server_errors():
            if settings.chroma_host:
                token = settings.chroma_token
                headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else None
                self.client: Any = chromadb.HttpClient(
                    host=settings.chroma_host, port=settings.chroma_port, headers=headers, settings=chroma_settings
                )
                self.collection_name = f"{settings.chroma_collection}-{generation}"
            else:
                self.client = chromadb.PersistentClient(path=str(generation_dir / "chroma"), settings=chroma_settings)
                self.collection_name = settings.chroma_collection
            function = _ChromaEmbeddingFunction(embedder)
            if create:
                self.collection = self.client.get_or_create_collection(
                    self.collection_name, embedding_function=function, configuration=HNSW_CONFIGURATION
                )
                if not self.searches_as_configured():  # a copy of a generation built by an older version
                    self.collection.modify(configuration={"hnsw": {"ef_search": _EF_SEARCH}})
            else:  # an existing generation: an empty stand-in would silently return no vectors
                try:
                    self.collection = self.client.get_collection(self.collection_name, embedding_function=function)
                except NotFoundError:
                    where = f"sur le serveur Chroma {self._server}" if self.remote else f"dans {generation_dir}"
                    raise IndexUnavailableError(
                        f"vecteurs introuvables (collection « {self.collection_name} » absente {where} ; index "
                        "construit sans ce serveur ?) : relancez « ptce ingest --rebuild »"
                    ) from None

    @contextlib.contextmanager
    def _server_errors(self) -> Iterator[None]:
        """Server mode: an unreachable or failing Chroma server is reported as IndexUnavailableError."""
        try:
            yield
        except PtceError:
            raise
        except Exception as exc:
            if not self.remote:
                raise
            raise IndexUnavailableError(
                f"serveur Chroma injoignable ou en erreur ({self._server} : {exc}) : démarrez-le "
                "(chroma run --host HÔTE --port PORT --path DOSSIER), vérifiez PTCE_CHROMA_HOST, PTCE_CHROMA_PORT "
                "et PTCE_CHROMA_TOKEN, ou retirez PTCE_CHROMA_HOST pour revenir à l'index local"
            ) from exc

    def searches_as_configured(self) -> bool:
        """Whether the collection's HNSW search breadth is this version's (older indexes used Chroma's 100)."""
        hnsw = (self.collection.configuration or {}).get("hnsw") or {}
        return bool(hnsw.get("ef_search") == _EF_SEARCH)

    def count(self) -> int:
        """Vectors in the collection."""
        return int(self.collection.count())

    def query(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """(chunk_id, cosine similarity) of the `n` nearest chunks."""
        with self._server_errors():
            total = self.count()
            if total == 0:
                return []
            found = self.collection.query(
                query_embeddings=[vector.tolist()], n_results=min(n, total), include=["distances"]
            )
        return [(cid, 1.0 - float(d)) for cid, d in zip(found["ids"][0], found["distances"][0], strict=True)]

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Store chunk vectors with their ids and document ids."""
        with self._server_errors():
            self.collection.upsert(
                ids=[c.chunk_id for c in chunks],
                embeddings=vectors,
                metadatas=[{"doc_id": c.doc_id} for c in chunks],
            )

    def delete_documents(self, doc_ids: Iterable[str]) -> None:
        """Remove every vector of these documents."""
        for doc_id in doc_ids:
            self.collection.delete(where={"doc_id": doc_id})

    def copy_from(self, other: VectorStore, batch: int = 2000) -> None:
        """Copy all vectors of another collection (server mode: a new generation's collection)."""
        offset = 0
        with self._server_errors():
            while True:
                got = other.collection.get(include=["embeddings", "metadatas"], limit=batch, offset=offset)
                if not got["ids"]:
                    return
                self.collection.upsert(ids=got["ids"], embeddings=got["embeddings"], metadatas=got["metadatas"])
                offset += len(got["ids"])

    def drop(self) -> None:
        """Delete the collection (server mode, an abandoned or superseded generation)."""
        with contextlib.suppress(Exception):
            self.client.delete_collection(self.collection_name)


class LexicalIndex:
    """BM25 over French terms of each chunk's breadcrumb and text (bm25s)."""

    def __init__(self, retriever: Any, chunk_ids: list[str]) -> None:
        self._retriever = retriever
        self._chunk_ids = chunk_ids
        self._vocab: dict[str, int] = dict(getattr(retriever, "vocab_dict", {}) or {})
        self.terms: frozenset[str] = frozenset(term for term in self._vocab if term)

    def idf(self, term: str) -> float:
        """BM25 inverse document frequency of an analysed term (its column's length in the BM25 matrix)."""
        token = self._vocab.get(term)
        frequency = 0
        if token is not None and self._retriever is not None:
            indptr = self._retriever.scores["indptr"]
            frequency = int(indptr[token + 1] - indptr[token])
        return bm25_idf(frequency, len(self._chunk_ids))

    @classmethod
    def build(cls, chunks: Sequence[Chunk]) -> LexicalIndex:
        """Index the chunks' analysed text."""
        import bm25s

        retriever = bm25s.BM25()
        if chunks:
            retriever.index([french_terms(c.indexed_text()) or [""] for c in chunks], show_progress=False)
        return cls(retriever, [c.chunk_id for c in chunks])

    def save(self, folder: Path) -> None:
        """Persist the BM25 matrices and the chunk order."""
        folder.mkdir(parents=True, exist_ok=True)
        if self._chunk_ids:
            self._retriever.save(str(folder), show_progress=False)
        (folder / "chunk_ids.json").write_text(json.dumps(self._chunk_ids), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        """Open a saved index (memory-mapped)."""
        import bm25s

        chunk_ids = json.loads((folder / "chunk_ids.json").read_text(encoding="utf-8"))
        retriever = bm25s.BM25.load(str(folder), mmap=True, show_progress=False) if chunk_ids else None
        return cls(retriever, chunk_ids)

    def search(self, query: str, n: int) -> list[tuple[str, float]]:
        """(chunk_id, BM25 score) of the best `n` chunks with a positive score."""
        terms = [t for t in french_terms(query) if t in self._vocab]
        if not terms or not self._chunk_ids:
            return []
        ids, scores = self._retriever.retrieve([terms], k=min(n, len(self._chunk_ids)), show_progress=False)
        return [(self._chunk_ids[int(i)], float(s)) for i, s in zip(ids[0], scores[0], strict=True) if float(s) > 0]


@dataclass(frozen=True)
class IndexView:
    """One generation's parts, replaced as a whole when the index changes: a search never mixes two."""

    generation: str
    folder: Path
    manifest: Manifest
    chunks: list[Chunk]
    by_id: dict[str, Chunk]
    lexical: LexicalIndex
    vectors: VectorStore
    sentences: SentenceVectors


class CorpusIndex:
    """A read-only view of the current generation: chunks, vectors, BM25, manifest, document texts."""

    def __init__(self, settings: Settings, embedder: SentenceEmbeddings | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._lock = threading.Lock()
        self._pointer_stamp: tuple[float, str] | None = None
        self.view = self._open()

    @property
    def root(self) -> Path:
        """The index folder."""
        return self.settings.index_dir

    def _open(self) -> IndexView:
        stamp = _pointer_stamp(self.root)
        generation = current_generation(self.root)
        if generation is None:
            raise IndexUnavailableError(f"aucun index dans {self.root} : lancez « ptce ingest » pour indexer le corpus")
        folder = self.root / generation
        try:
            manifest, chunks = read_generation(folder)
            lexical = LexicalIndex.load(folder / "lexical")
            vectors = VectorStore(self.settings, folder, generation, self._embedder, create=False)
        except (OSError, ValueError) as exc:
            raise IndexUnavailableError(
                f"index illisible ({folder}: {exc}) : relancez « ptce ingest --rebuild »"
            ) from None
        self._pointer_stamp = stamp
        sentences = SentenceVectors(folder, {doc_id: record.sha256 for doc_id, record in manifest.documents.items()})
        by_id = {c.chunk_id: c for c in chunks}
        return IndexView(generation, folder, manifest, chunks, by_id, lexical, vectors, sentences)

    def refresh(self) -> IndexView:
        """The current generation's view, reopened first if another process flipped the pointer."""
        if _pointer_stamp(self.root) != self._pointer_stamp:
            with self._lock:
                if _pointer_stamp(self.root) != self._pointer_stamp:
                    self.view = self._open()  # one assignment: readers see the old view or the new one
        return self.view

    @property
    def generation(self) -> str:
        """The generation folder's name."""
        return self.view.generation

    @property
    def manifest(self) -> Manifest:
        """Documents and how they were embedded."""
        return self.view.manifest

    @property
    def chunks(self) -> list[Chunk]:
        """Every chunk, by document then position."""
        return self.view.chunks

    @property
    def by_id(self) -> dict[str, Chunk]:
        """Chunks by id."""
        return self.view.by_id

    @property
    def lexical(self) -> LexicalIndex:
        """The French BM25 index."""
        return self.view.lexical

    @property
    def vectors(self) -> VectorStore:
        """The Chroma collection."""
        return self.view.vectors

    @property
    def sentences(self) -> SentenceVectors:
        """The sentence vectors of every passage."""
        return self.view.sentences

    def document_text(self, doc_id: str) -> str:
        """The extracted text that chunk and citation offsets refer to."""
        view = self.view
        record = view.manifest.documents[doc_id]
        return (view.folder / "texts" / f"{record.sha256}.txt").read_text(encoding="utf-8")

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """A document's chunks in reading order."""
        return [c for c in self.chunks if c.doc_id == doc_id]


def _pointer_stamp(root: Path) -> tuple[float, str] | None:
    try:
        pointer = root / POINTER
        return (pointer.stat().st_mtime, pointer.read_text(encoding="utf-8"))
    except OSError:
        return None


def read_generation(folder: Path) -> tuple[Manifest, list[Chunk]]:
    """A generation's manifest and chunks (raises OSError or ValueError when unreadable)."""
    manifest = Manifest.model_validate_json((folder / "manifest.json").read_text(encoding="utf-8"))
    lines = (folder / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
    return manifest, [Chunk.model_validate_json(line) for line in lines if line]


def current_generation(root: Path) -> str | None:
    """The generation folder the pointer names, if the index exists."""
    try:
        data = json.loads((root / POINTER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    generation = data.get("generation")
    return generation if isinstance(generation, str) and (root / generation).is_dir() else None


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
            and manifest.ef_search == _EF_SEARCH
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
            _release(store)
            _fsync_tree(staging)
            os.replace(staging, self.root / generation)
            _fsync_dir(self.root)
            _write_atomic(self.root / POINTER, json.dumps({"generation": generation}))
        except BaseException:
            if store is not None and store.remote:
                store.drop()
            _release(store)
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
            ef_search=_EF_SEARCH,  # VectorStore gave the collection this breadth
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


def _release(store: VectorStore | None) -> None:
    """Let Chroma close its files before the folder is renamed or removed."""
    if store is not None and not store.remote:
        with contextlib.suppress(Exception):
            store.client.close()
