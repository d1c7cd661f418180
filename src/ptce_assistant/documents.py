"""Loaders for the corpus: .txt, .md and .pdf files become Documents with per-page offsets."""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from charset_normalizer import from_bytes
from pydantic import BaseModel, Field

from ptce_assistant.errors import DocumentError

SUPPORTED_SUFFIXES = (".txt", ".md", ".pdf")
METADATA_SUFFIX = ".meta.json"
# Characters that never appear in real text; their presence means a binary file.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# In a file name: C0/C1 controls, bidi overrides that disguise an extension, undecodable bytes.
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# Hostile PDFs: a few KB can inflate to gigabytes (decompression bombs, pages sharing one stream).
MAX_PDF_STREAM_BYTES = 10_000_000
MAX_PDF_TEXT_CHARS = 10_000_000


class Page(BaseModel):
    """A physical page: its 1-based number, printed label and span in the document text."""

    number: int
    label: str
    start: int
    end: int


class Document(BaseModel):
    """A loaded file: extracted text, pages, metadata and the hash of its bytes."""

    doc_id: str
    path: str
    title: str
    text: str
    pages: list[Page] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    sha256: str
    kind: str

    def page_at(self, offset: int) -> Page | None:
        """The page holding character `offset` (None for paginated-less text)."""
        for page in self.pages:
            if page.start <= offset < page.end:
                return page
        return self.pages[-1] if self.pages and offset >= self.pages[-1].start else None


def doc_id_for(path: Path, root: Path | None) -> str:
    """A stable id: the path relative to the corpus folder, else the file name."""
    try:
        relative = path.resolve().relative_to(root.resolve()) if root else Path(path.name)
    except ValueError:
        relative = Path(path.name)
    return relative.as_posix()


def discover(paths: Iterable[Path]) -> list[Path]:
    """Files to ingest under `paths` (folders are walked), sorted; metadata sidecars excluded."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not p.name.startswith(".")
                and not p.name.endswith(METADATA_SUFFIX)
                and not p.name.lower().startswith("readme")
            )
        else:
            found.add(path)
    return sorted(found)


def load_document(
    path: Path, root: Path | None = None, max_pdf_pages: int = 2000, max_bytes: int | None = None
) -> Document:
    """Load one file or raise DocumentError naming the file and what to do."""
    name = printable_path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(
            name, f"type « {suffix or 'sans extension'} » non pris en charge (formats acceptés : .txt, .md, .pdf)"
        )
    if _UNSAFE_NAME.search(doc_id_for(path, root)):
        raise DocumentError(
            name, "nom de fichier avec caractères de contrôle ou octets non UTF-8 : renommez le fichier"
        )
    if root is not None and _lexically_inside(path, root) and not _inside(path.resolve(), root):
        raise DocumentError(name, "lien symbolique vers un fichier hors du corpus : copiez le fichier à la place")
    try:
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise DocumentError(name, f"fichier trop volumineux (limite {max_bytes // 1_000_000} Mo) : découpez-le")
        data = path.read_bytes()
    except FileNotFoundError:
        raise DocumentError(name, "fichier introuvable (supprimé pendant l'ingestion ?)") from None
    except OSError as exc:
        raise DocumentError(name, f"lecture impossible ({exc.strerror}) : vérifiez les droits du fichier") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise DocumentError(
            name,
            f"fichier trop volumineux ({len(data) // 1_000_000} Mo, limite {max_bytes // 1_000_000} Mo) : découpez-le",
        )
    if not data.strip():
        raise DocumentError(name, "fichier vide : rien à indexer")
    if suffix == ".pdf":
        text, pages, pdf_meta = _read_pdf(name, data, max_pdf_pages)
    else:
        text, pages, pdf_meta = _decode_text(name, data), [], {}
    metadata = {**pdf_meta, **_read_metadata(path)}
    title = str(metadata.get("title") or _first_line(text) or path.stem)
    return Document(
        doc_id=doc_id_for(path, root),
        path=str(path),
        title=title,
        text=text,
        pages=pages,
        metadata=metadata,
        sha256=hashlib.sha256(data).hexdigest(),
        kind=suffix.lstrip("."),
    )


def _inside(path: Path, root: Path) -> bool:
    return path.is_relative_to(root.resolve())


def _lexically_inside(path: Path, root: Path) -> bool:
    """Inside `root` by its written path (a symlinked file or folder on the way counts as inside)."""
    return Path(os.path.normpath(path.absolute())).is_relative_to(os.path.normpath(root.absolute()))


def _escaped(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of the name (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable_path(path: Path) -> str:
    """The path for one-line messages: control characters and undecodable bytes escaped."""
    return _UNSAFE_NAME.sub(lambda m: _escaped(m.group()), str(path))


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:200]
    return ""


def _read_metadata(path: Path) -> dict[str, Any]:
    sidecar = path.with_name(path.stem + METADATA_SUFFIX)
    if not sidecar.exists():
        return {}
    try:
        loaded = json.loads(sidecar.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise DocumentError(str(sidecar), f"métadonnées illisibles ({exc}) : corrigez le JSON") from None
    if not isinstance(loaded, dict):
        raise DocumentError(str(sidecar), "métadonnées : un objet JSON est attendu")
    return loaded


def normalise_text(text: str) -> str:
    """NFC, Unix newlines, no BOM: the text that offsets refer to."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", text)


def _decode_text(name: str, data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        western = _western_text(data)
        best = None if western is not None else from_bytes(data).best()
        if western is None and (best is None or best.encoding is None or b"\x00" in data):
            raise DocumentError(name, "contenu binaire ou encodage inconnu : enregistrez le texte en UTF-8") from None
        text = western if western is not None else str(best)
    text = normalise_text(text)
    if _CONTROL.search(text) and len(_CONTROL.findall(text)) > max(3, len(text) // 1000):
        raise DocumentError(name, "contenu binaire (caractères de contrôle) : ce n'est pas un fichier texte")
    if not text.strip():
        raise DocumentError(name, "fichier vide : rien à indexer")
    return text


def _western_text(data: bytes) -> str | None:
    """Windows-1252/Latin-1 text, tried before detection: charset-normalizer reads French as cp1250 (à → ŕ)."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    visible = [c for c in text if not c.isspace()]
    # French has a few accented letters per sentence; mostly non-ASCII means another encoding or garbage.
    return text if "\x00" not in text and sum(not c.isascii() for c in visible) <= 0.2 * len(visible) else None


def _read_pdf(name: str, data: bytes, max_pages: int) -> tuple[str, list[Page], dict[str, Any]]:
    import io

    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import LimitReachedError

    limits: dict[str, Any] = {
        f"{codec}_maximum_output_length": MAX_PDF_STREAM_BYTES
        for codec in ("zlib", "lzw", "run_length", "jbig2", "brotli", "array_based_stream")
    }
    try:
        with apply_configuration(None, **limits):
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise DocumentError(name, "PDF protégé par mot de passe : fournissez une version non chiffrée")
            count = len(reader.pages)
            if count > max_pages:
                raise DocumentError(name, f"PDF de {count} pages (limite {max_pages}) : découpez-le")
            labels = list(reader.page_labels) if count else []
            parts: list[str] = []
            pages: list[Page] = []
            cursor = 0
            for number, page in enumerate(reader.pages, start=1):
                page_text = normalise_text(page.extract_text() or "").strip()
                if parts:
                    parts.append("\n\n")
                    cursor += 2
                parts.append(page_text)
                label = labels[number - 1] if number - 1 < len(labels) else str(number)
                pages.append(Page(number=number, label=label, start=cursor, end=cursor + len(page_text)))
                cursor += len(page_text)
                if cursor > MAX_PDF_TEXT_CHARS:
                    raise DocumentError(
                        name,
                        f"texte extrait démesuré (plus de {MAX_PDF_TEXT_CHARS // 1_000_000} millions de caractères "
                        f"dès la page {number}) : découpez le PDF ou vérifiez qu'il n'est pas piégé",
                    )
            info: Any = reader.metadata or {}
            meta = {"title": str(info.get("/Title") or "").strip()} if info.get("/Title") else {}
    except DocumentError:
        raise
    except LimitReachedError:
        raise DocumentError(
            name,
            f"PDF démesuré (un flux dépasse {MAX_PDF_STREAM_BYTES // 1_000_000} Mo décompressé ou trop "
            "d'opérations : bombe de décompression ?) : réexportez-le depuis le logiciel d'origine",
        ) from None
    except Exception as exc:  # pypdf raises anything on hostile input (fuzzing: NotImplementedError, bad filter)
        raise DocumentError(
            name, f"PDF illisible ou corrompu ({type(exc).__name__}) : réexportez-le depuis le logiciel d'origine"
        ) from None
    text = "".join(parts)
    if not text.strip():
        raise DocumentError(
            name,
            "PDF sans texte extractible (scan ou images seules) : "
            "passez-le par un logiciel de reconnaissance de caractères (OCR)",
        )
    return text, pages, meta
