"""Questions embedded by ONNX Runtime: parity with torch, fallback, and no torch when answering."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from ptce_assistant.assistant import Assistant
from ptce_assistant.config import PROJECT_ROOT, Settings
from ptce_assistant.embeddings import model_folder, prepare_query_model
from ptce_assistant.evals.dataset import load_cases
from ptce_assistant.onnx_model import (
    EXPORTER_VERSION,
    PARITY_MIN_COSINE,
    STAMP_NAME,
    OnnxEncoder,
    OnnxExportError,
    _pooling,
    load_onnx_encoder,
)
from ptce_assistant.onnx_model import onnx_folder as onnx_folder_of
from ptce_assistant.sentences import document_sentences

EVALS = PROJECT_ROOT / "evals"
BLIND_TEST_SPLIT = "heldout-blind-6.jsonl"  # never read: the blind split is run once, at the end


@pytest.fixture(scope="module")
def onnx_folder(shared_settings: Settings) -> Path:
    """The export of the default model (made here if `ptce doctor --prepare` has not run)."""
    return prepare_query_model(shared_settings)


def _eval_questions() -> list[str]:
    files = [EVALS / "dev.jsonl", *sorted(p for p in EVALS.glob("heldout*.jsonl") if p.name != BLIND_TEST_SPLIT)]
    assert len(files) >= 5 and all(p.name != BLIND_TEST_SPLIT for p in files)
    return [case.question for path in files for case in load_cases(path)]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))


def test_parity_with_torch_on_corpus_and_eval_questions(assistant: Assistant, onnx_folder: Path) -> None:
    embedder = assistant.embedder
    encoder = OnnxEncoder(onnx_folder)
    chunks = assistant.index.chunks
    # The index embeds passages and each of their sentences.
    texts = [c.indexed_text() for c in chunks] + [text for _, _, text in document_sentences(chunks)]
    passages = ["passage: " + text for text in texts]
    questions = ["query: " + question for question in _eval_questions()]
    assert len(chunks) >= 15 and len(passages) > len(chunks) and len(questions) > 200
    for texts in (passages, questions):
        torch_vectors = np.asarray(embedder.model.encode(texts, batch_size=8, normalize_embeddings=True))
        onnx_vectors = encoder.encode(texts)  # batches of 8: padding is exercised too
        cosines = _cosines(torch_vectors, onnx_vectors)
        worst = int(np.argmin(cosines))
        assert cosines[worst] >= PARITY_MIN_COSINE, (texts[worst], float(cosines[worst]))


def test_assistant_embeds_questions_with_onnx(shared_settings: Settings, onnx_folder: Path) -> None:
    from ptce_assistant.embeddings import get_embedder

    embedder = get_embedder(shared_settings.model_copy(update={"query_runtime": "onnx"}))
    if embedder.runtime != "onnx":  # the session's embedder was loaded before the export existed
        pytest.skip("embedder loaded before the export")
    question = "Quel est le rôle des collectivités dans les PTCE ?"
    vector = embedder.encode_query(question + " (onnx)")
    expected = embedder.model.encode(["query: " + question + " (onnx)"], normalize_embeddings=True)[0]
    assert float(vector @ expected) >= PARITY_MIN_COSINE
    assert vector.shape == (embedder.dim,) and vector.dtype == np.float32


def test_query_threads_setting_reaches_onnx_runtime(
    shared_settings: Settings, onnx_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ptce_assistant import embeddings

    monkeypatch.setattr(embeddings, "_EMBEDDERS", {})  # a fresh process-wide embedder, restored afterwards
    settings = shared_settings.model_copy(update={"query_runtime": "onnx", "query_threads": 3, "torch_threads": 1})
    embedder = embeddings.get_embedder(settings)
    encoder = embedder._query_encoder
    assert isinstance(encoder, OnnxEncoder)
    assert encoder.alone.get_session_options().intra_op_num_threads == 3
    assert encoder.together.get_session_options().intra_op_num_threads == 1


def test_a_question_embedded_while_another_is_takes_one_thread(onnx_folder: Path) -> None:
    """Alone, a question gets every thread; at the same time as another, one thread (no lost throughput)."""
    encoder = OnnxEncoder(onnx_folder, threads=2)
    assert encoder.alone is not encoder.together
    used: list[str] = []
    first_running = threading.Event()
    release = threading.Event()

    class Recording:
        def __init__(self, name: str, session: Any, wait: bool) -> None:
            self.name, self.session, self.wait = name, session, wait

        def run(self, *args: Any) -> Any:
            used.append(self.name)
            if self.wait:
                first_running.set()
                assert release.wait(30)
            return self.session.run(*args)

    encoder.alone = Recording("alone", encoder.alone, wait=True)  # type: ignore[assignment]
    encoder.together = Recording("together", encoder.together, wait=False)  # type: ignore[assignment]
    first = threading.Thread(target=encoder.encode, args=(["query: premier"],))
    first.start()
    assert first_running.wait(30)
    during = encoder.encode(["query: second"])  # while the first still runs
    release.set()
    first.join(30)
    encoder.alone.wait = False  # type: ignore[attr-defined]
    after = encoder.encode(["query: second"])
    assert used == ["alone", "together", "alone"]
    np.testing.assert_array_equal(during, after)  # both sessions read the same weights


def test_both_sessions_share_one_mapping_of_the_weights(onnx_folder: Path) -> None:
    stamp = json.loads((onnx_folder / STAMP_NAME).read_text())
    names = {row[0] for row in stamp["weights"]}
    assert any("word_embeddings" in name for name in names)
    assert sum(row[4] for row in stamp["weights"]) <= (onnx_folder / "model.onnx.data").stat().st_size
    encoder = OnnxEncoder(onnx_folder, threads=2)
    assert set(encoder._weights) == names  # given to both sessions, which therefore load none themselves


def test_an_export_without_its_weight_table_falls_back(
    shared_settings: Settings, onnx_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = model_folder(shared_settings)
    assert folder is not None
    copy = onnx_folder_of(tmp_path, folder)
    shutil.copytree(onnx_folder, copy)
    stamp = json.loads((copy / STAMP_NAME).read_text())
    del stamp["weights"]
    (copy / STAMP_NAME).write_text(json.dumps(stamp))
    with caplog.at_level(logging.WARNING, logger="ptce_assistant.onnx_model"):
        assert load_onnx_encoder(folder, tmp_path) is None
    assert len(caplog.records) == 1 and "passent par torch" in caplog.records[0].getMessage()


def test_missing_export_falls_back_with_one_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = tmp_path / "model"
    source.mkdir()
    (source / "config.json").write_text("{}")
    with caplog.at_level(logging.WARNING, logger="ptce_assistant.onnx_model"):
        assert load_onnx_encoder(source, tmp_path / "cache") is None
    assert len(caplog.records) == 1 and "ptce doctor --prepare" in caplog.records[0].getMessage()


def test_export_of_other_weights_is_not_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = tmp_path / "model"
    source.mkdir()
    (source / "model.safetensors").write_bytes(b"new weights")
    export = onnx_folder_of(tmp_path / "cache", source)
    export.mkdir(parents=True)
    stamp = {"exporter": EXPORTER_VERSION, "source_sha256": "0" * 64, "fingerprint": {}, "max_tokens": 512}
    (export / STAMP_NAME).write_text(json.dumps(stamp))
    with caplog.at_level(logging.WARNING, logger="ptce_assistant.onnx_model"):
        assert load_onnx_encoder(source, tmp_path / "cache") is None
    assert len(caplog.records) == 1 and "ne correspond plus" in caplog.records[0].getMessage()


def test_stamp_follows_the_source_weights(shared_settings: Settings, onnx_folder: Path) -> None:
    from ptce_assistant.onnx_model import source_hash

    stamp = json.loads((onnx_folder / STAMP_NAME).read_text())
    folder = model_folder(shared_settings)
    assert folder is not None and stamp["source_sha256"] == source_hash(folder)
    assert "model.safetensors" in stamp["fingerprint"]


@pytest.mark.parametrize(
    ("modules", "reason"),
    [
        ([SimpleNamespace(), SimpleNamespace()], "modules"),
        ([type("Transformer", (), {})(), type("Pooling", (), {"pooling_mode": "max"})()], "max"),
        (
            [type("Transformer", (), {"do_lower_case": True})(), type("Pooling", (), {"pooling_mode": "mean"})()],
            "minuscules",
        ),
    ],
)
def test_unsupported_model_shapes_are_refused(modules: list[object], reason: str) -> None:
    with pytest.raises(OnnxExportError, match=reason):
        _pooling(modules)  # type: ignore[arg-type]
    supported = [type("Transformer", (), {})(), type("Pooling", (), {"pooling_mode": "mean"})()]
    assert _pooling(supported) == ("mean", False)  # type: ignore[arg-type]


# The answering path in a fresh interpreter: torch must not be imported. Each script prints the modules.
CLI_SCRIPT = """
import atexit, json, sys
atexit.register(lambda: print("MODULES=" + json.dumps(sorted(sys.modules))))
from ptce_assistant.cli import app
app(sys.argv[1:])
"""
APP_SCRIPT = """
import json, sys
from streamlit.testing.v1 import AppTest
import signin
signin.client_address = lambda: "127.0.0.1"
at = AppTest.from_file(sys.argv[1], default_timeout=300).run()
at.chat_input[0].set_value(sys.argv[2]).run()
assert not at.exception, [e.value for e in at.exception]
print("ANSWER=" + json.dumps([m.value for m in at.markdown])[:2000])
print("MODULES=" + json.dumps(sorted(sys.modules)))
"""


def _run_fresh(script: str, args: list[str], settings: Settings, tmp_path: Path) -> tuple[list[str], str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "src"), str(PROJECT_ROOT / "app")]),
        "PTCE_CORPUS_DIR": str(settings.corpus_dir),
        "PTCE_INDEX_DIR": str(settings.index_dir),
        "PTCE_CACHE_DIR": str(settings.cache_dir),
        "PTCE_AUDIT_DB": str(tmp_path / "audit.sqlite3"),
        "PTCE_MODE": "extractive",
        "PTCE_QUERY_RUNTIME": "onnx",
    }
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("MODULES="))
    return json.loads(line.removeprefix("MODULES=")), done.stdout


@pytest.mark.parametrize("command", ["ask", "search"])
def test_cli_answers_without_torch(
    command: str, assistant: Assistant, shared_settings: Settings, onnx_folder: Path, tmp_path: Path
) -> None:
    question = "Quels sont les huit leviers identifiés par l'étude ?"
    modules, output = _run_fresh(CLI_SCRIPT, [command, question], shared_settings, tmp_path)
    assert "levier" in output.lower()  # it did answer
    assert "onnxruntime" in modules  # the question went through ONNX Runtime...
    assert "torch" not in modules and "sentence_transformers" not in modules  # ...and torch never loaded


def test_app_answers_without_torch(
    assistant: Assistant, shared_settings: Settings, onnx_folder: Path, tmp_path: Path
) -> None:
    app = str(PROJECT_ROOT / "app" / "streamlit_app.py")
    question = "Quels sont les huit leviers identifiés par l'étude ?"
    modules, output = _run_fresh(APP_SCRIPT, [app, question], shared_settings, tmp_path)
    assert "levier" in output.lower()
    assert "onnxruntime" in modules and "torch" not in modules
