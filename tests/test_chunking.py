"""The structure-aware chunker: paragraphs and bullets, breadcrumbs, list positions, exact offsets."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ptce_assistant.chunking import chunk_document
from ptce_assistant.documents import Document, load_document

LEVERS = "8 leviers au développement des PTCE ont été identifiés"


def _study_chunks() -> list:  # type: ignore[type-arg]
    from conftest import CORPUS_DIR, STUDY

    return chunk_document(load_document(STUDY, CORPUS_DIR))


def test_every_chunk_is_exactly_its_span_of_the_text(study_text: str) -> None:
    for chunk in _study_chunks():
        assert study_text[chunk.start : chunk.end] == chunk.text
        assert not chunk.text.startswith(("•", " ")), chunk.text


def test_the_eight_levers_are_one_chunk_each_with_their_position() -> None:
    levers = [c for c in _study_chunks() if c.breadcrumb[-1] == LEVERS]
    assert [c.list_position for c in levers] == list(range(1, 9))
    assert {c.list_length for c in levers} == {8}
    assert levers[6].text.startswith("Soutenir l'emploi et les fonctions de coordination")
    assert levers[0].breadcrumb == ["Les PTCE et le rôle des collectivités", LEVERS]


def test_sections_become_breadcrumbs_and_the_title_is_not_a_chunk() -> None:
    chunks = _study_chunks()
    headings = {c.breadcrumb[-1] for c in chunks}
    assert {"Rôle des collectivités", "Un lien fort entre PTCE et développement local", LEVERS} <= headings
    assert all(c.text != "Les PTCE et le rôle des collectivités" for c in chunks)
    assert chunks[0].breadcrumb == ["Les PTCE et le rôle des collectivités"]  # intro sits under the title


def test_sizes_stay_near_the_target() -> None:
    lengths = [len(c.text) for c in _study_chunks()]
    assert max(lengths) <= 900
    assert sum(200 <= n <= 600 for n in lengths) >= len(lengths) * 0.6


def test_long_paragraph_is_split_on_sentence_boundaries(tmp_path: Path) -> None:
    sentence = "La coopération économique territoriale demande du temps et des moyens durables. "
    path = tmp_path / "long.txt"
    path.write_text("Titre\n\n" + sentence * 30, encoding="utf-8")
    doc = load_document(path, tmp_path)
    chunks = chunk_document(doc)
    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk.text.endswith(".") and len(chunk.text) <= 900
        assert doc.text[chunk.start : chunk.end] == chunk.text


def test_markdown_headings_nest(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text(
        "# Guide\n\n## Partie A\n\n### Détail\n\nTexte du détail, assez long pour compter.\n\n"
        "## Partie B\n\n- premier point de la liste\n- second point de la liste\n",
        encoding="utf-8",
    )
    chunks = chunk_document(load_document(path, tmp_path))
    assert chunks[0].breadcrumb == ["Guide", "Partie A", "Détail"]
    assert [c.breadcrumb for c in chunks[1:]] == [["Guide", "Partie B"]] * 2
    assert [c.list_position for c in chunks[1:]] == [1, 2]


def test_pdf_chunks_carry_their_page(tmp_path: Path) -> None:
    from pdfs import make_pdf

    path = tmp_path / "r.pdf"
    path.write_bytes(
        make_pdf(
            [
                ["Premier paragraphe de la premiere page, avec du texte."],
                ["Second paragraphe sur la deuxieme page, avec du texte."],
            ],
            labels_from=1,
        )
    )
    chunks = chunk_document(load_document(path, tmp_path))
    assert [(c.page, c.page_label) for c in chunks] == [(1, "i"), (2, "1")]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([*"ab é.•-#\n ", "Les PTCE. ", "\n  • ", "\n\n", "1) ", "\r"]), max_size=400))
def test_offsets_always_point_at_the_text_they_claim(pieces: list[str]) -> None:
    text = "".join(pieces)
    doc = Document(doc_id="x", path="x.txt", title="T", text=text, sha256="0", kind="txt")
    for chunk in chunk_document(doc):
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text.strip()
