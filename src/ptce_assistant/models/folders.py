"""A model folder built once in the shared cache: under a lock, in a temporary sibling renamed into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ptce_assistant.errors import ModelUnavailableError


def build_folder(target: Path, is_complete: Callable[[Path], bool], write: Callable[[Path], None], what: str) -> Path:
    """`target`, written by `write(tmp)` unless `is_complete(target)` already; `what` names it in errors.

    An interrupted build never leaves a partial folder (leftovers of one are removed under the lock);
    a process that waited for another's build returns that build. Raises ModelUnavailableError.
    """
    from filelock import FileLock

    if is_complete(target):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target.parent / f".{target.name}.lock")):
            if is_complete(target):  # built by another process while we waited
                return target
            for leftover in [
                *target.parent.glob(f".{target.name}.tmp-*"),
                *target.parent.glob(f".{target.name}.old-*"),
            ]:
                shutil.rmtree(leftover, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
            try:
                write(tmp)
                tmp.chmod(0o755)  # mkdtemp's 0700 would hide the model from other users of a shared cache
                if target.exists() or target.is_symlink():
                    old = target.parent / f".{target.name}.old-{os.getpid()}"
                    os.replace(target, old)
                    os.replace(tmp, target)
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    os.replace(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        raise ModelUnavailableError(
            f"Impossible d'écrire {what} dans {target.parent} ({exc.strerror or exc}) : "
            "vérifiez les droits et l'espace libre (environ 500 Mo), ou changez PTCE_CACHE_DIR."
        ) from exc
    return target
