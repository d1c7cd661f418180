"""Optional cross-encoder reranking of the fused candidates, for users who can install such a model.

No multilingual cross-encoder ships its weights on PyPI, so none is used by default: with
`PTCE_RERANKER_MODEL` set to a sentence-transformers CrossEncoder (a folder, or a Hugging Face name
when the hub is reachable), the first `PTCE_RERANK_CANDIDATES` fused hits are re-scored by it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ptce_assistant.config import Settings

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder


class Reranker:
    """A CrossEncoder that scores (query, passage) pairs; higher is more relevant."""

    def __init__(self, model: CrossEncoder, name: str, batch_size: int = 8) -> None:
        self.model = model
        self.name = name
        self._batch_size = batch_size

    def scores(self, query: str, passages: Sequence[str]) -> list[float]:
        """One relevance score per passage, in the passages' order."""
        if not passages:
            return []
        found = self.model.predict(
            [(query, passage) for passage in passages], batch_size=self._batch_size, show_progress_bar=False
        )
        return [float(score) for score in found]


_RERANKERS: dict[str, Reranker] = {}
_RERANKERS_LOCK = threading.Lock()


def get_reranker(settings: Settings) -> Reranker | None:
    """The process-wide reranker `settings.reranker_model` names, or None when none is set.

    Raises ModelUnavailableError when the named model cannot be loaded.
    """
    name = settings.reranker_model
    if not name:
        return None
    with _RERANKERS_LOCK:
        reranker = _RERANKERS.get(name)
        if reranker is None:
            from sentence_transformers import CrossEncoder

            from ptce_assistant.models.loading import load_named_model

            model = load_named_model(
                name, "PTCE_RERANKER_MODEL", kind=CrossEncoder, fallback=", ou videz PTCE_RERANKER_MODEL"
            )
            reranker = _RERANKERS[name] = Reranker(model, name, settings.embedding_batch_size)
    return reranker
