"""Decompression bombs and giant files: rejected within a memory cap, never hanging; one huge line cut in
bounded chunks."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pdfs import deflated, shared_content_pdf
from ptce_assistant.chunking import SPLIT_ABOVE, chunk_document
from ptce_assistant.documents import load_document

_BOMB_CHILD = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))
    from ptce_assistant.documents import load_document
    from ptce_assistant.errors import DocumentError
    for name in sys.argv[1:]:
        try:
            load_document(Path(name), max_bytes=20_000_000)
            print("loaded", name)
        except DocumentError as exc:
            print("rejected", exc.reason)
    print("peak MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    """
)


def test_pdf_bombs_neither_hang_nor_eat_the_machine(tmp_path: Path) -> None:
    bombs = {
        # 490 KB inflating to 500 MB of blanks.
        "zeros.pdf": shared_content_pdf(deflated(b"", b" ", 500_000_000), flate=True),
        # 70 KB inflating to one 70 MB string: 30 s and 900 MB of text before the stream limit.
        "chaine.pdf": shared_content_pdf(
            deflated(b"BT /F1 11 Tf 72 720 Td (", b"A", 70_000_000, b") Tj ET"), flate=True
        ),
        # 1500 pages drawing one 4 MB text stream: 6 GB of text before the total limit.
        "partage.pdf": shared_content_pdf(
            deflated(b"BT /F1 11 Tf 72 720 Td (", b"Mot ", 1_000_000, b") Tj ET"), pages=1500, flate=True
        ),
    }
    giant = tmp_path / "immense.txt"
    with open(giant, "wb") as handle:
        handle.truncate(3_000_000_000)  # sparse 3 GB: reading it before the size check breaks the memory cap
    paths = []
    for name, data in bombs.items():
        assert len(data) < 500_000  # small files...
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    # Memory capped at 1.5 GB; the timeout only turns a hang into a failure.
    child = subprocess.run(
        [sys.executable, "-c", _BOMB_CHILD, *paths, str(giant)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    lines = child.stdout.splitlines()
    assert lines[:4] == [
        "rejected PDF démesuré (un flux dépasse 10 Mo décompressé ou trop d'opérations : bombe de décompression ?) "
        ": réexportez-le depuis le logiciel d'origine",
    ] * 2 + [
        "rejected texte extrait démesuré (plus de 10 millions de caractères dès la page 3) : "
        "découpez le PDF ou vérifiez qu'il n'est pas piégé",
        "rejected fichier trop volumineux (limite 20 Mo) : découpez-le",
    ]


@pytest.mark.timeout(180)  # guards against a quadratic chunker: linear takes a few seconds
@pytest.mark.parametrize("unit", ["mot ", "a"], ids=["words", "no-space"])
def test_five_megabyte_single_line_is_cut_in_bounded_chunks(tmp_path: Path, unit: str) -> None:
    path = tmp_path / "ligne.txt"
    path.write_text(unit * (5_000_000 // len(unit)), encoding="utf-8")
    doc = load_document(path, tmp_path)
    chunks = chunk_document(doc)
    assert all(0 < len(c.text) <= SPLIT_ABOVE for c in chunks)
    assert all(doc.text[c.start : c.end] == c.text for c in chunks)
    covered = sum(len(c.text.replace(" ", "")) for c in chunks)
    assert covered == len(doc.text.replace(" ", ""))  # nothing lost, nothing twice
