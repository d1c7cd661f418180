"""Files uploaded through the app: safe names, content checks, the uploads folder of the corpus."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from charset_normalizer import from_bytes

from ptce_assistant.config import Settings
from ptce_assistant.documents import METADATA_SUFFIX, SUPPORTED_SUFFIXES
from ptce_assistant.errors import DocumentError

UPLOADS_FOLDER = "uploads"
PDF_MAGIC = b"%PDF-"
MAX_NAME_CHARS = 120
# Letters and digits of any script, and a few harmless separators; everything else becomes "_".
_UNSAFE = re.compile(r"[^\w.\- ()'+,]", re.UNICODE)


def uploads_dir(settings: Settings) -> Path:
    """Where uploaded documents are kept (inside the corpus, so a full sync keeps them)."""
    return settings.corpus_dir / UPLOADS_FOLDER


def is_upload(path: str | Path, settings: Settings) -> bool:
    """True for a document that was uploaded through the app (it can be removed there)."""
    return Path(path).resolve().parent == uploads_dir(settings).resolve()


def safe_filename(name: str) -> str:
    """A file name without folders, `..`, control characters or shell-hostile symbols; accents kept.

    Raises DocumentError when nothing usable is left or the type is not .txt, .md or .pdf.
    """
    base = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")  # control, format, unassigned
    base = _UNSAFE.sub("_", base).replace("..", "_").strip(" ._-")
    stem, dot, suffix = base.rpartition(".")
    suffix = suffix.lower()
    if not dot or f".{suffix}" not in SUPPORTED_SUFFIXES:
        raise DocumentError(name, "type non pris en charge (formats acceptés : .txt, .md, .pdf)")
    stem = stem.strip(" ._-")[:MAX_NAME_CHARS]
    if not stem:
        raise DocumentError(name, "nom de fichier vide après nettoyage : renommez le fichier")
    if stem.lower().startswith("readme") or f"{stem}.{suffix}".endswith(METADATA_SUFFIX):
        stem = f"document-{stem}"  # the corpus walk skips READMEs and metadata sidecars
    return f"{stem}.{suffix}"


def check_upload(name: str, data: bytes, max_mb: int) -> str:
    """The safe name of an acceptable upload; DocumentError (one line) says why a file is refused.

    The type is checked by content: a PDF must start with `%PDF-`, a text file must decode as text.
    """
    safe = safe_filename(name)
    if len(data) > max_mb * 1_000_000:
        raise DocumentError(safe, f"fichier trop volumineux ({len(data) / 1_000_000:.1f} Mo, limite {max_mb} Mo)")
    if not data.strip():
        raise DocumentError(safe, "fichier vide : rien à indexer")
    if safe.endswith(".pdf"):
        if not data.startswith(PDF_MAGIC):
            raise DocumentError(safe, "ce n'est pas un PDF (signature %PDF- absente)")
        return safe
    if b"\x00" in data or not _decodes(data):
        raise DocumentError(safe, "contenu binaire : ce n'est pas un fichier texte (enregistrez-le en UTF-8)")
    return safe


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        best = from_bytes(data).best()
        return best is not None and best.encoding is not None
    return True


def save_upload(settings: Settings, name: str, data: bytes) -> Path:
    """Check an upload and write it into the uploads folder (replacing a file of the same name)."""
    safe = check_upload(name, data, settings.max_upload_mb)
    folder = uploads_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / safe
    tmp = folder / f".{safe}.part"
    tmp.write_bytes(data)
    tmp.replace(target)  # the corpus walk skips dot files, so a half-written upload is never ingested
    return target


def remove_upload(settings: Settings, path: str | Path) -> None:
    """Delete an uploaded document (and its metadata sidecar); other corpus files are refused."""
    target = Path(path)
    if not is_upload(target, settings):
        raise DocumentError(str(path), "seuls les documents téléversés peuvent être retirés depuis l'application")
    target.unlink(missing_ok=True)
    target.with_name(target.stem + METADATA_SUFFIX).unlink(missing_ok=True)
