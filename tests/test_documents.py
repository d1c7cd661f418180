"""Loading txt, md and pdf files, and the one-line errors for files that cannot be ingested."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdfs import encrypt_pdf, make_pdf
from ptce_assistant.documents import discover, load_document
from ptce_assistant.errors import DocumentError


def test_bundled_study_loads_with_its_metadata(study_text: str) -> None:
    from conftest import CORPUS_DIR, STUDY

    doc = load_document(STUDY, CORPUS_DIR)
    assert doc.doc_id == "rtes-2014-ptce-role-des-collectivites.txt"
    assert doc.title == "Les PTCE et le rôle des collectivités"
    assert doc.metadata["publisher"].startswith("Réseau des collectivités Territoriales")
    assert doc.metadata["date"] == "2014-03"
    assert "8 leviers au développement des PTCE ont été identifiés" in doc.text
    assert len(doc.sha256) == 64


def test_markdown_and_crlf_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_bytes("\ufeff# Titre\r\n\r\nUn paragraphe.\r\n".encode())
    doc = load_document(path, tmp_path)
    assert doc.text == "# Titre\n\nUn paragraphe.\n"
    assert doc.title == "Titre"
    assert doc.kind == "md"


def test_latin1_text_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "ancien.txt"
    path.write_bytes("Les collectivités soutiennent l'économie sociale et solidaire. ".encode("latin-1") * 5)
    doc = load_document(path, tmp_path)
    assert "collectivités" in doc.text


def test_pdf_keeps_physical_numbers_and_printed_labels(tmp_path: Path) -> None:
    path = tmp_path / "rapport.pdf"
    path.write_bytes(make_pdf([["Avant-propos du rapport."], ["Les leviers du développement."]], labels_from=1))
    doc = load_document(path, tmp_path)
    assert [(p.number, p.label) for p in doc.pages] == [(1, "i"), (2, "1")]
    second = doc.pages[1]
    assert doc.text[second.start : second.end].startswith("Les leviers")
    assert doc.page_at(second.start + 3) == second


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("vide.txt", b"", "vide"),
        ("blancs.md", b"  \n\t\n ", "vide"),
        ("binaire.txt", bytes(range(256)) * 8, "binaire"),
        ("faux.pdf", b"%PDF-1.4\n" + bytes(range(256)) * 4, "PDF illisible"),
        ("tronque.pdf", make_pdf([["Un texte."]])[:150], "PDF illisible"),
        ("image.pdf", make_pdf([[]]), "sans texte"),
        ("chiffre.pdf", encrypt_pdf(make_pdf([["Secret."]]), "motdepasse"), "mot de passe"),
        ("tableur.xlsx", b"PK\x03\x04", "non pris en charge"),
    ],
)
def test_bad_files_get_a_one_line_error_naming_them(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DocumentError) as caught:
        load_document(path, tmp_path)
    message = str(caught.value)
    assert message.startswith(str(path)) and reason in message
    assert "\n" not in message


def test_pdf_with_empty_password_is_read(tmp_path: Path) -> None:
    path = tmp_path / "ouvert.pdf"
    path.write_bytes(encrypt_pdf(make_pdf([["Texte lisible."]]), ""))
    assert "Texte lisible." in load_document(path, tmp_path).text


def test_too_many_pdf_pages_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.pdf"
    path.write_bytes(make_pdf([["page"]] * 5))
    with pytest.raises(DocumentError, match="5 pages"):
        load_document(path, tmp_path, max_pdf_pages=3)


def test_vanished_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="introuvable"):
        load_document(tmp_path / "parti.txt", tmp_path)


def test_symlink_out_of_the_corpus_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "ailleurs.txt"
    outside.write_text("Texte hors corpus.", encoding="utf-8")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "lien.txt").symlink_to(outside)
    with pytest.raises(DocumentError, match="lien symbolique"):
        load_document(corpus / "lien.txt", corpus)


def test_discover_skips_metadata_and_hidden_files(tmp_path: Path) -> None:
    for name in ["a.txt", "b.meta.json", ".cache.txt", "README.md", "sous/c.pdf"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x", encoding="utf-8")
    assert [p.relative_to(tmp_path).as_posix() for p in discover([tmp_path])] == ["a.txt", "sous/c.pdf"]
