"""The local model served over HTTP (llama.cpp's OpenAI-compatible server), and what a server offers.

Several app instances then share one loaded model instead of loading 1.1 GB each.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from urllib.parse import urlsplit

from pydantic import BaseModel

from ptce_assistant.config import Settings
from ptce_assistant.errors import ModelUnavailableError
from ptce_assistant.models.gguf import local_model_path

# The name `ptce serve-llm` gives the model; PTCE_OPENAI_MODEL must be the same.
SERVED_MODEL = "qwen2.5-coder-1.5b-instruct"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080
_INSTALL_SERVER = "pip install -e '.[llm]'  (llama-cpp-python[server]: FastAPI, uvicorn, sse-starlette)"


class ServedModels(BaseModel):
    """The models an OpenAI-compatible server lists, and whether the configured one is among them."""

    url: str
    models: list[str]
    configured: str

    @property
    def has_configured(self) -> bool:
        """True when PTCE_OPENAI_MODEL names one of the server's models."""
        return self.configured in self.models


def listen_address(settings: Settings) -> tuple[str, int]:
    """Host and port of PTCE_OPENAI_BASE_URL when it points to this machine, else 127.0.0.1:8080."""
    if settings.openai_base_url:
        parts = urlsplit(settings.openai_base_url)
        if parts.hostname in ("127.0.0.1", "localhost", "::1") and parts.port:
            return parts.hostname, parts.port
    return DEFAULT_HOST, DEFAULT_PORT


def server_command(settings: Settings, host: str, port: int) -> list[str]:
    """`python -m llama_cpp.server` over the bundled GGUF, with the in-process model's own parameters.

    Requests queue instead of interrupting each other (llama.cpp's default cuts a stream when the
    next request arrives, which mixes up concurrent users). Raises ModelUnavailableError if missing.
    """
    if not all(importlib.util.find_spec(module) for module in ("llama_cpp", "fastapi", "sse_starlette", "uvicorn")):
        raise ModelUnavailableError(f"llama.cpp's server is not installed. Run: {_INSTALL_SERVER}")
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(local_model_path(settings)),
        "--model_alias",
        SERVED_MODEL,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--n_batch",
        "512",
        "--n_threads",
        str(settings.llm_threads),
        "--interrupt_requests",
        "false",
        "--verbose",
        "false",
    ]


def server_environment(settings: Settings) -> dict[str, str]:
    """The environment of the server process: the API key travels here, never on the command line (ps).

    llama.cpp's server reads its settings from the environment too, and there they beat the command
    line: honcho's PORT (5000, 5100...) moved it off --port. Those names are dropped.
    """
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    theirs = {name.upper() for kind in (ModelSettings, ServerSettings) for name in kind.model_fields} | {"CONFIG_FILE"}
    env = {k: v for k, v in os.environ.items() if k.upper() not in theirs}
    if settings.openai_api_key is not None:
        env["API_KEY"] = settings.openai_api_key.get_secret_value()  # llama_cpp.server's own setting
    return env


def served_models(settings: Settings) -> ServedModels:
    """GET /models of the configured server (PTCE_OPENAI_BASE_URL, PTCE_OPENAI_API_KEY).

    Raises ModelUnavailableError saying which setting to check; the key never appears in it.
    """
    import openai

    from ptce_assistant.llm import failure_reason

    client = openai.OpenAI(
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else "not-needed",
        timeout=min(settings.openai_timeout, 10),
        max_retries=0,
    )
    try:
        models = sorted(model.id for model in client.models.list())
    except Exception as exc:  # any failure is reported as the setting to check
        raise ModelUnavailableError(failure_reason(exc, settings, "openai")) from None
    finally:
        client.close()
    return ServedModels(url=str(client.base_url), models=models, configured=settings.openai_model)
