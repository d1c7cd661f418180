"""Uploads: safe file names, type checked by content, size limit, removal limited to uploads."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import make_settings
from ptce_assistant.errors import DocumentError
from ptce_assistant.uploads import check_upload, is_upload, remove_upload, safe_filename, save_upload


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("note.txt", "note.txt"),
        ("Étude rurale — été 2014.md", "Étude rurale _ été 2014.md"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\évaluation.PDF", "évaluation.pdf"),
        ("a..b.txt", "a_b.txt"),
        ("bad\x00name\x1b\u202e.txt", "badname.txt"),
        (".hidden.md", "hidden.md"),
        ("README.md", "document-README.md"),
        ("ptce.meta.json.txt", "ptce.meta.json.txt"),
        ("<script>.txt", "script.txt"),
        ("日本語のメモ.txt", "日本語のメモ.txt"),
    ],
)
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


@pytest.mark.parametrize("name", ["image.png", "sans-extension", "../..", "....txt", "\x00.txt"])
def test_unusable_names_are_refused(name: str) -> None:
    with pytest.raises(DocumentError):
        safe_filename(name)


def test_type_is_checked_by_content() -> None:
    assert check_upload("a.txt", "Texte en français : éà".encode(), 1) == "a.txt"
    assert check_upload("a.txt", "Texte latin-1 : éà".encode("latin-1"), 1) == "a.txt"
    assert check_upload("a.pdf", b"%PDF-1.7\n...", 1) == "a.pdf"
    with pytest.raises(DocumentError, match="binaire"):
        check_upload("image.txt", bytes(range(256)) * 4, 1)
    with pytest.raises(DocumentError, match="%PDF-"):
        check_upload("faux.pdf", b"<html>pas un pdf</html>", 1)
    with pytest.raises(DocumentError, match="vide"):
        check_upload("vide.md", b"  \n", 1)
    with pytest.raises(DocumentError, match="volumineux"):
        check_upload("gros.txt", b"a" * 1_000_001, 1)


def test_errors_are_one_line() -> None:
    with pytest.raises(DocumentError) as caught:
        check_upload("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00", 1)
    assert "\n" not in str(caught.value)


def test_save_and_remove_stay_inside_the_uploads_folder(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, corpus_dir=tmp_path / "corpus")
    saved = save_upload(settings, "../../échappée.txt", b"Contenu.")
    assert saved == tmp_path / "corpus" / "uploads" / "échappée.txt"
    assert saved.read_text(encoding="utf-8") == "Contenu."
    assert is_upload(saved, settings)
    assert not list(saved.parent.glob(".*"))  # no temporary file left behind

    other = tmp_path / "corpus" / "etude.txt"
    other.write_text("Étude", encoding="utf-8")
    with pytest.raises(DocumentError):
        remove_upload(settings, other)
    assert other.exists()
    remove_upload(settings, saved)
    assert not saved.exists()
