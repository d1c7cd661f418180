"""Chroma in client-server mode: a real `chroma run` on 127.0.0.1, driven through the facade."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import make_settings
from ptce_assistant.assistant import Assistant, citation_is_valid
from ptce_assistant.errors import IndexUnavailableError

pytestmark = pytest.mark.server

LEVIER = "Soutenir l'emploi et les fonctions de coordination"
NOTE = "La monnaie locale complémentaire finance les circuits courts du territoire."
STARTUP_SECONDS = 60


@dataclass
class ChromaServer:
    """A `chroma run` process listening on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def host(self) -> str:
        """Loopback only."""
        return "127.0.0.1"

    def stop(self) -> None:
        """Terminate the server (kill it if it does not stop)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _chroma_executable() -> str:
    beside = Path(sys.executable).with_name("chroma")
    found = str(beside) if beside.exists() else shutil.which("chroma")
    if not found:
        pytest.fail("the `chroma` command of the chromadb package is not installed: pip install -e .")
    return found


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    """A Chroma server on a free port with its data under tmp_path; stopped after the test."""
    port = _free_port()
    log = tmp_path / "chroma.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [_chroma_executable(), "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(tmp_path / "db")],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = ChromaServer(process, port, log)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"chroma run exited with {process.returncode}:\n{log.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no heartbeat from chroma run after {STARTUP_SECONDS} s:\n{log.read_text(errors='replace')}"
                )
            time.sleep(0.25)
        yield server
    finally:
        server.stop()


def _server_collections(server: ChromaServer) -> set[str]:
    import chromadb

    client = chromadb.HttpClient(host=server.host, port=server.port)
    return {c.name for c in client.list_collections()}


def _assert_consistent(assistant: Assistant) -> None:
    """The chunks, the BM25 index and the server's vectors name exactly the same chunk ids."""
    index = assistant.index
    lexical_ids = json.loads((index.root / index.generation / "lexical" / "chunk_ids.json").read_text("utf-8"))
    vector_ids = index.vectors.collection.get(include=[])["ids"]
    assert len(lexical_ids) == len(vector_ids) == len(index.chunks)
    assert set(lexical_ids) == set(vector_ids) == set(index.by_id)


def test_ingest_search_ask_and_reingest_on_a_chroma_server(
    chroma_server: ChromaServer, corpus_copy: Path, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path, corpus_dir=corpus_copy, chroma_host=chroma_server.host, chroma_port=chroma_server.port
    )
    helper = Assistant(settings)
    first = helper.ingest()
    assert [o.status for o in first.outcomes] == ["added"]
    assert first.chunks_embedded == first.chunks_total == 20
    assert helper.index.vectors.remote
    assert helper.index.vectors.collection_name in _server_collections(chroma_server)
    assert not (tmp_path / "index" / helper.index.generation / "chroma").exists()  # vectors live on the server
    _assert_consistent(helper)

    assert LEVIER in helper.search("soutenir l'emploi et la coordination des projets").hits[0].chunk.text
    answer = helper.ask("Quels sont les huit leviers identifiés par l'étude ?")
    assert not answer.abstained and answer.citations
    assert all(citation_is_valid(c, helper.index) for c in answer.citations)

    # Incremental: only the new document is embedded; the old vectors are copied server-side.
    (corpus_copy / "note.md").write_text(f"# Note\n\n{NOTE}\n", encoding="utf-8")
    second = helper.ingest()
    assert sorted(o.status for o in second.outcomes) == ["added", "unchanged"]
    assert second.chunks_embedded == 1 and second.chunks_total == 21
    _assert_consistent(helper)

    # Another app instance over the same index folder and server sees the same generation.
    other = Assistant(settings)
    assert other.index.generation == second.generation
    assert other.search("monnaie locale complémentaire").hits[0].chunk.text == NOTE

    (corpus_copy / "note.md").unlink()
    third = helper.ingest()
    assert sorted(o.status for o in third.outcomes) == ["removed", "unchanged"]
    assert third.chunks_embedded == 0 and third.chunks_total == 20
    _assert_consistent(helper)
    # Superseded generations are pruned from the server as from the folder (current + previous kept).
    assert _server_collections(chroma_server) == {
        f"{settings.chroma_collection}-{third.generation}",
        f"{settings.chroma_collection}-{second.generation}",
    }
    after = other.search("monnaie locale complémentaire")  # the other instance follows the flip
    assert other.index.generation == third.generation
    assert all(hit.chunk.text != NOTE for hit in after.hits)

    chroma_server.stop()
    with pytest.raises(IndexUnavailableError, match="serveur Chroma injoignable"):
        helper.search("huit leviers")
    with pytest.raises(IndexUnavailableError, match="PTCE_CHROMA_HOST"):
        Assistant(settings).index  # noqa: B018


def test_an_index_built_without_the_server_asks_for_a_rebuild(
    chroma_server: ChromaServer, corpus_copy: Path, tmp_path: Path
) -> None:
    embedded = make_settings(tmp_path, corpus_dir=corpus_copy)
    Assistant(embedded).ingest()
    remote = embedded.model_copy(update={"chroma_host": chroma_server.host, "chroma_port": chroma_server.port})
    # Its vectors are in the folder, not on the server: no silently empty dense search, no broken update.
    with pytest.raises(IndexUnavailableError, match="ingest --rebuild"):
        Assistant(remote).index  # noqa: B018
    (corpus_copy / "note.md").write_text(f"# Note\n\n{NOTE}\n", encoding="utf-8")
    with pytest.raises(IndexUnavailableError, match="ingest --rebuild"):
        Assistant(remote).ingest()  # an update would copy the previous vectors from the server
    assert _server_collections(chroma_server) == set()  # nothing was created on the way

    switched = Assistant(remote)
    report = switched.ingest(rebuild=True)
    assert report.chunks_embedded == report.chunks_total == 21
    _assert_consistent(switched)
