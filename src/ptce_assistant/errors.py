"""The project's own exceptions: each carries a message that tells the user what to do."""


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
