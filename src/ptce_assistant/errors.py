"""The project's own exceptions: each carries a message that tells the user what to do."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

Record = TypeVar("Record", bound=BaseModel)


class PtceError(Exception):
    """Base class for errors shown to users without a traceback."""


class DocumentError(PtceError):
    """A file cannot be ingested (empty, binary, encrypted, image-only, unknown type...)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ModelUnavailableError(PtceError):
    """A model (embedder or LLM) is missing or cannot be loaded."""


class IndexUnavailableError(PtceError):
    """The index is missing, unreadable or built with another embedder."""


class InputLimitError(PtceError):
    """A question, history or upload exceeds a configured limit."""


def read_record(path: Path, kind: type[Record], unreadable: str, invalid: str) -> Record:
    """A record read from a JSON file; PtceError "path: unreadable (why)" or "path: invalid (first error)"."""
    try:
        return kind.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PtceError(f"{path}: {unreadable} ({exc.strerror})") from None
    except ValueError as exc:
        raise PtceError(f"{path}: {invalid} ({str(exc).splitlines()[0]})") from None
