"""The models and the index, loaded in a background thread while the pages are already on screen.

A page draws what needs no model first (title, examples, question box), then waits for the loading
behind a progress message. The loading runs once per process, outside any script run: a question
typed meanwhile reruns the page, which then waits only for the steps still to come.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ptce_assistant.errors import PtceError

if TYPE_CHECKING:
    from ptce_assistant.assistant import Assistant

Step = tuple[str, Callable[["Loading"], None]]


@dataclass
class Loading:
    """Named steps run in order in a thread; `stage` says which one runs now, `error` why it stopped."""

    steps: Sequence[Step]
    stage: str = "Démarrage…"
    error: PtceError | None = None
    finished: threading.Event = field(default_factory=threading.Event)
    assistant: Assistant | None = None

    def start(self) -> Loading:
        threading.Thread(target=self._run, name="ptce-loading", daemon=True).start()
        return self

    def _run(self) -> None:
        try:
            for label, step in self.steps:
                self.stage = label
                step(self)
        except PtceError as exc:
            self.error = exc
        except Exception as exc:  # shown as one line; the page must not wait forever on a dead thread
            self.error = PtceError(f"chargement impossible ({type(exc).__name__} : {exc})")
        finally:
            self.finished.set()

    @property
    def done(self) -> bool:
        return self.finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once every step has run (or one failed)."""
        return self.finished.wait(timeout)


def _embedding_model(loading: Loading) -> None:
    from ptce_assistant.assistant import shared_assistant  # in this thread: the page is drawn meanwhile

    loading.assistant = shared_assistant()
    loading.assistant.embedder.encode_query("amorçage")  # the first encode also loads torch's kernels


def _index(loading: Loading) -> None:
    assistant = loading.assistant
    assert assistant is not None

    def progress(what: str, done: int, total: int) -> None:
        loading.stage = f"Première utilisation : indexation du corpus ({what} {done}/{total})…"

    assistant.ensure_index(progress)
    loading.stage = "Ouverture de l'index…"
    _ = assistant.searcher, assistant.calibration  # index, BM25 and the gate's model


def assistant_loading() -> Loading:
    """The steps that make the shared assistant ready to answer, started now."""
    return Loading(
        steps=[("Chargement du modèle d'embeddings…", _embedding_model), ("Ouverture de l'index…", _index)]
    ).start()
