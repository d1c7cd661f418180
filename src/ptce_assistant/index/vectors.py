"""The Chroma adapter: a generation's chunk vectors, embedded in its folder or on a Chroma server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ptce_assistant.chunking import Chunk
from ptce_assistant.config import Settings
from ptce_assistant.errors import IndexUnavailableError, PtceError

if TYPE_CHECKING:
    from ptce_assistant.embeddings import SentenceEmbeddings

# Chroma's default ef_search (100) found 82% of the exact top 30 among 100,000 look-alike chunks; 500
# found 97% for ~8 ms a query (benchmarks/hnsw_recall.py). An older index gets it at its next `ptce ingest`.
EF_SEARCH = 500
HNSW_CONFIGURATION: dict[str, Any] = {"hnsw": {"space": "cosine", "ef_search": EF_SEARCH}}


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
        # Vectors counted once for searching: Chroma's count() cost more than its query (1.7 of 2.3 ms a
        # search, 2026-12-04). A published generation never changes; this object's writes reset it.
        self._size: int | None = None
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
                    self.collection.modify(configuration={"hnsw": {"ef_search": EF_SEARCH}})
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
        return bool(hnsw.get("ef_search") == EF_SEARCH)

    def count(self) -> int:
        """Vectors in the collection."""
        return int(self.collection.count())

    def query(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """(chunk_id, cosine similarity) of the `n` nearest chunks."""
        with self._server_errors():
            if self._size is None:
                self._size = self.count()
            total = self._size
            if total == 0:
                return []
            found = self.collection.query(
                query_embeddings=[vector.tolist()], n_results=min(n, total), include=["distances"]
            )
        return [(cid, 1.0 - float(d)) for cid, d in zip(found["ids"][0], found["distances"][0], strict=True)]

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Store chunk vectors with their ids and document ids."""
        self._size = None
        with self._server_errors():
            self.collection.upsert(
                ids=[c.chunk_id for c in chunks],
                embeddings=vectors,
                metadatas=[{"doc_id": c.doc_id} for c in chunks],
            )

    def delete_documents(self, doc_ids: Iterable[str]) -> None:
        """Remove every vector of these documents."""
        self._size = None
        for doc_id in doc_ids:
            self.collection.delete(where={"doc_id": doc_id})

    def copy_from(self, other: VectorStore, batch: int = 2000) -> None:
        """Copy all vectors of another collection (server mode: a new generation's collection)."""
        offset = 0
        self._size = None
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


def release(store: VectorStore | None) -> None:
    """Let Chroma close its files before the folder is renamed or removed."""
    if store is not None and not store.remote:
        with contextlib.suppress(Exception):
            store.client.close()
