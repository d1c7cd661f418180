"""Hostile and broken files in one ingestion: each gets one clear line (file named, what to do), the rest of
the batch is ingested, the index stays consistent; links and paths never reach outside the corpus."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import STUDY, make_settings
from pdfs import deflated, encrypt_pdf, image_only_pdf, make_pdf, shared_content_pdf, text_op
from ptce_assistant.assistant import Assistant
from ptce_assistant.documents import load_document, printable_path
from ptce_assistant.errors import DocumentError
from ptce_assistant.index import IngestReport

LATIN1 = (
    "Les collectivités locales, à travers leurs élus, soutiennent très activement les coopératives ; "
    "elles reconnaissent même là où l'intérêt général paraît peu évident le rôle de l'économie solidaire.\n"
)
CP1252 = "L’économie sociale – « solidaire » – œuvre pour les territoires ruraux des Cévennes.\n"
ACCEPTED_TEXT = "Les pôles territoriaux de coopération économique rassemblent des acteurs du quartier {}.\n"


@dataclass(frozen=True)
class Hostile:
    """A file planted in the corpus and what ingestion must say about it (None: ingested)."""

    name: str
    content: Callable[[], bytes]
    error: str | None


def _rng_bytes(seed: int, n: int, low: int = 0, high: int = 256) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.randrange(low, high) for _ in range(n))


def _truncated_pdf() -> bytes:
    data = make_pdf([["Premiere page."], ["Seconde page."]])
    return data[: len(data) // 2]


HOSTILE = [
    Hostile("vide.txt", lambda: b"", "fichier vide"),
    Hostile("blancs.md", lambda: b"  \n\t \r\n  \n", "fichier vide"),
    Hostile("binaire.txt", lambda: bytes(range(256)) * 8, "binaire"),
    Hostile("photo.md", lambda: b"\x89PNG\r\n\x1a\n" + _rng_bytes(1, 3000), "binaire"),
    Hostile("binaire.pdf", lambda: _rng_bytes(2, 3000), "PDF illisible"),
    Hostile("tronque.pdf", _truncated_pdf, "PDF illisible"),
    Hostile("xref-casse.pdf", lambda: make_pdf([["Texte."]]).replace(b"xref", b"xREF"), "PDF illisible"),
    Hostile("chiffre.pdf", lambda: encrypt_pdf(make_pdf([["Secret."]]), "motdepasse"), "mot de passe"),
    Hostile("scan.pdf", image_only_pdf, "sans texte extractible"),
    Hostile("milliers-de-pages.pdf", lambda: shared_content_pdf(text_op("Page."), pages=2001), "2001 pages"),
    Hostile(
        "bombe.pdf",
        lambda: shared_content_pdf(deflated(b"BT /F1 11 Tf 72 720 Td (", b"A", 300_000_000, b") Tj ET"), flate=True),
        "démesuré",
    ),
    Hostile("charabia.txt", lambda: _rng_bytes(3, 4000, 0x80, 0x100), "encodage inconnu"),
    Hostile("utf16.txt", lambda: "Les PTCE en UTF-16.".encode("utf-16"), "enregistrez le texte en UTF-8"),
    Hostile(
        "filtre-inconnu.pdf",
        lambda: shared_content_pdf(b"x", flate=True).replace(b"/FlateDecode", b"/NoSuchDecode"),
        "NotImplementedError",
    ),
    Hostile("tableur.docx", lambda: b"PK\x03\x04 pas un docx", "non pris en charge"),
    Hostile("ctl\x1b[31mrouge.txt", lambda: ACCEPTED_TEXT.format("rouge").encode(), "nom de fichier"),
    Hostile("ligne\nnouvelle.txt", lambda: ACCEPTED_TEXT.format("nouveau").encode(), "nom de fichier"),
    Hostile("caf\udce9-latin1.txt", lambda: ACCEPTED_TEXT.format("latin").encode(), "nom de fichier"),
    Hostile("facture\u202etxt.md", lambda: ACCEPTED_TEXT.format("inversé").encode(), "nom de fichier"),
    # Accepted: these must be ingested and searchable.
    Hostile("chiffre-sans-mot-de-passe.pdf", lambda: encrypt_pdf(make_pdf([["Texte ouvert lisible."]]), ""), None),
    Hostile("page-geante.pdf", lambda: shared_content_pdf(text_op("Grande page."), media="0 0 14400 1000000"), None),
    Hostile("latin1.txt", lambda: LATIN1.encode("latin-1"), None),
    Hostile("cp1252.txt", lambda: CP1252.encode("cp1252"), None),
    Hostile("تقرير عربي.txt", lambda: ACCEPTED_TEXT.format("arabe").encode(), None),
    Hostile("中文报告.md", lambda: ACCEPTED_TEXT.format("chinois").encode(), None),
    Hostile("rapport 🎉 [1] <b>.txt", lambda: ACCEPTED_TEXT.format("festif").encode(), None),
]
REJECTED = [h for h in HOSTILE if h.error]
ACCEPTED = [h for h in HOSTILE if not h.error]


@dataclass
class HostileRun:
    """The corpus with every hostile file, the Assistant that ingested it and its report."""

    corpus: Path
    outside: Path
    helper: Assistant
    report: IngestReport

    def outcome(self, name: str) -> tuple[str, str | None, str | None]:
        """(status, error, doc_id) of the file called `name`."""
        found = [o for o in self.report.outcomes if Path(o.path).name == name]
        assert len(found) == 1, (name, [o.path for o in self.report.outcomes])
        return found[0].status, found[0].error, found[0].doc_id


@pytest.fixture(scope="module")
def hostile(assistant: Assistant, tmp_path_factory: pytest.TempPathFactory) -> HostileRun:
    """One ingestion of the study next to every hostile file (1 MB uploads: 10 MB corpus files)."""
    tmp = tmp_path_factory.mktemp("hostile")
    corpus, outside = tmp / "corpus", tmp / "outside"
    (outside / "dossier").mkdir(parents=True)
    corpus.mkdir()
    (corpus / STUDY.name).write_bytes(STUDY.read_bytes())
    for item in HOSTILE:
        (corpus / item.name).write_bytes(item.content())
    with open(corpus / "trop-gros.txt", "wb") as handle:
        handle.truncate(11_000_000)  # sparse: the size check must come before reading
    (corpus / "meta-cassee.txt").write_text(ACCEPTED_TEXT.format("meta"), encoding="utf-8")
    (corpus / "meta-cassee.meta.json").write_text("{pas du json", encoding="utf-8")
    (outside / "secret.txt").write_text("Secret hors du corpus : ne pas indexer.\n", encoding="utf-8")
    (outside / "dossier" / "autre-secret.txt").write_text("Autre secret hors du corpus.\n", encoding="utf-8")
    (corpus / "lien.txt").symlink_to(outside / "secret.txt")
    (corpus / "lien-dossier").symlink_to(outside / "dossier", target_is_directory=True)
    helper = Assistant(make_settings(tmp, corpus_dir=corpus, max_upload_mb=1))
    helper.__dict__["embedder"] = assistant.embedder
    return HostileRun(corpus, outside, helper, helper.ingest())


@pytest.mark.parametrize("item", REJECTED, ids=[ascii(h.name) for h in REJECTED])
def test_hostile_file_is_rejected_and_the_batch_proceeds(hostile: HostileRun, item: Hostile) -> None:
    status, error, doc_id = hostile.outcome(item.name)
    assert status == "rejected" and doc_id is None and item.error is not None
    assert error is not None and item.error in error and "\n" not in error
    assert hostile.report.chunks_total > 20  # the study and the accepted files made it


@pytest.mark.parametrize("item", REJECTED, ids=[ascii(h.name) for h in REJECTED])
def test_rejection_is_one_printable_line_naming_the_file(hostile: HostileRun, item: Hostile) -> None:
    path = hostile.corpus / item.name
    assert item.error is not None
    with pytest.raises(DocumentError) as caught:
        load_document(path, hostile.corpus)
    message = str(caught.value)
    assert message.startswith(printable_path(path)) and item.error in message
    assert message.isprintable(), ascii(message)  # no newline, escape sequence or bidi override
    message.encode("utf-8")  # undecodable name bytes are escaped, so any terminal or log can show it


@pytest.mark.parametrize("item", ACCEPTED, ids=[ascii(h.name) for h in ACCEPTED])
def test_accepted_file_is_indexed_under_a_safe_doc_id(hostile: HostileRun, item: Hostile) -> None:
    status, error, doc_id = hostile.outcome(item.name)
    assert (status, error, doc_id) == ("added", None, item.name)
    index = hostile.helper.index
    chunks = index.chunks_of(item.name)
    assert chunks and all(c.chunk_id.startswith(f"{item.name}#") for c in chunks)
    text = index.document_text(item.name)
    assert all(text[c.start : c.end] == c.text for c in chunks)


def test_legacy_encodings_are_read_as_french(hostile: HostileRun) -> None:
    index = hostile.helper.index
    assert index.document_text("latin1.txt") == LATIN1  # not "ŕ travers", "trčs" (cp1250 misdetection)
    assert index.document_text("cp1252.txt") == CP1252


def test_other_limits_and_links(hostile: HostileRun) -> None:
    run = hostile
    assert run.outcome("trop-gros.txt")[:2] == ("rejected", "fichier trop volumineux (limite 10 Mo) : découpez-le")
    assert "métadonnées illisibles" in (run.outcome("meta-cassee.txt")[1] or "")
    assert "lien symbolique" in (run.outcome("lien.txt")[1] or "")
    assert all("secret" not in o.path for o in run.report.outcomes if o.status != "rejected")
    assert run.report.outcomes and not any("autre-secret" in o.path for o in run.report.outcomes)  # not walked
    # Named explicitly, a file reached through a symlinked folder is still refused.
    with pytest.raises(DocumentError, match="lien symbolique"):
        load_document(run.corpus / "lien-dossier" / "autre-secret.txt", run.corpus)


def test_index_stays_consistent_and_searchable(hostile: HostileRun) -> None:
    index = hostile.helper.index
    assert index.vectors.count() == len(index.chunks)
    assert set(index.manifest.documents) == {STUDY.name, *(h.name for h in ACCEPTED)}
    hits = hostile.helper.search("acteurs du quartier chinois", k=3).hits
    assert hits[0].chunk.doc_id == "中文报告.md"


def test_paths_with_dot_dot_get_plain_doc_ids(hostile: HostileRun) -> None:
    run = hostile
    (run.corpus / "sous").mkdir(exist_ok=True)
    escaping = run.corpus / "sous" / ".." / ".." / "outside" / "secret.txt"
    inside = run.corpus / "sous" / ".." / "latin1.txt"
    report = run.helper.ingest([escaping, inside])
    ids = {Path(o.path).name: o.doc_id for o in report.outcomes}
    assert ids == {"secret.txt": "secret.txt", "latin1.txt": "latin1.txt"}  # no "..", no folder outside
    assert {o.status for o in report.outcomes} == {"added", "unchanged"}
    run.helper.ingest()  # a full sync drops the file that lives outside the corpus again
    assert "secret.txt" not in run.helper.index.manifest.documents
