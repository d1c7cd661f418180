"""The embedding model exported to ONNX: built at `ptce doctor --prepare`, run by ONNX Runtime without torch.

Questions are embedded here when the export exists and is current, so answering never imports torch
(about 2 s of a cold start). The graph holds the transformer, the pooling and the normalisation of the
sentence-transformers model; its vectors match the torch ones at cosine >= 0.9999 (tests/test_onnx_model.py),
so an index built by either path stays valid and keeps its model id. A folder stamp records the source
model's content hash: an export of other weights is never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from ptce_assistant.models.folders import build_folder

if TYPE_CHECKING:
    from onnxruntime import InferenceSession, OrtValue
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

__all__ = ["OnnxEncoder", "OnnxExportError", "export_onnx", "load_onnx_encoder", "onnx_folder"]

log = logging.getLogger(__name__)

# Bump when the export changes, so folders written by an older exporter are rebuilt.
EXPORTER_VERSION = 5  # 5: the stamp lists where each weight lies in WEIGHTS_FILE
STAMP_NAME = "ptce-onnx-stamp.json"
MODEL_FILE = "model.onnx"
WEIGHTS_FILE = "model.onnx.data"
TOKENIZER_FILE = "tokenizer.json"
PARITY_MIN_COSINE = 0.9999
_SKIPPED = {"README.md", ".gitattributes"}  # source files whose edits do not change the vectors
_PROBES = [
    "query: Quel est le rôle des collectivités dans les PTCE ?",
    "passage: Les pôles territoriaux de coopération économique regroupent des acteurs de l'ESS.",
    "passage: « Coopérer plutôt que concurrencer » : 12\u00a0500 € par an, soit 3,5 % du total…",
]

Vector = npt.NDArray[np.float32]


class OnnxExportError(Exception):
    """The model's shape is not one the exporter reproduces (the caller falls back to torch)."""


def onnx_folder(cache_dir: Path, source: Path) -> Path:
    """Where the export of the model folder `source` lives: `<cache>/models/<folder name>.onnx-v<exporter>`.

    One folder per exporter version: checkouts of different versions sharing a cache never rewrite
    each other's export.
    """
    return Path(cache_dir).expanduser() / "models" / f"{source.name}.onnx-v{EXPORTER_VERSION}"


def _source_files(source: Path) -> list[Path]:
    return sorted(p for p in source.rglob("*") if p.is_file() and p.name not in _SKIPPED and not p.name.startswith("."))


def _fingerprint(source: Path) -> dict[str, list[int]]:
    """Size and modification time of each source file: a cheap check before any hashing."""
    return {str(p.relative_to(source)): [p.stat().st_size, p.stat().st_mtime_ns] for p in _source_files(source)}


def source_hash(source: Path) -> str:
    """sha256 over the source folder's files (names and contents)."""
    digest = hashlib.sha256()
    for path in _source_files(source):
        digest.update(str(path.relative_to(source)).encode() + b"\0")
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def _read_stamp(folder: Path) -> dict[str, Any] | None:
    try:
        stamp = json.loads((folder / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) and stamp.get("exporter") == EXPORTER_VERSION else None


def _current(folder: Path, source: Path) -> dict[str, Any] | None:
    """The stamp of an export made from `source` as it is now, else None (missing, older exporter, other weights)."""
    stamp = _read_stamp(folder)
    if stamp is None:
        return None
    if stamp.get("fingerprint") == _fingerprint(source):
        return stamp
    # Touched files (a copy, a restore) may still hold the same weights: only the content decides.
    return stamp if stamp.get("source_sha256") == source_hash(source) else None


# --------------------------------------------------------------------------------------------------
# Export (torch; run at `ptce doctor --prepare`)
# --------------------------------------------------------------------------------------------------


def _pooling(model: SentenceTransformer) -> tuple[str, bool]:
    """The pooling mode ("mean" or "cls") and whether vectors are normalised; OnnxExportError otherwise."""
    kinds = [type(module).__name__ for module in model]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise OnnxExportError(f"modules {kinds} (attendu : Transformer, Pooling, Normalize)")
    transformer, pooling = model[0], model[1]
    mode = getattr(pooling, "pooling_mode", None)
    mode = mode[0] if isinstance(mode, (tuple, list)) and len(mode) == 1 else mode
    if mode not in ("mean", "cls") or not getattr(pooling, "include_prompt", True):
        raise OnnxExportError(f"regroupement {mode!r} non pris en charge (seuls mean et cls le sont)")
    if getattr(transformer, "do_lower_case", False):
        raise OnnxExportError("le modèle met le texte en minuscules avant de le découper")
    return str(mode), len(kinds) == 3


def _export_graph(model: SentenceTransformer, mode: str, normalise: bool, path: Path) -> None:
    import warnings

    import torch

    class Pooled(torch.nn.Module):
        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            if mode == "cls":
                pooled = states[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(states.dtype)
                pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1) if normalise else pooled

    encoder = cast("torch.nn.Module", model[0].auto_model)
    encoder.eval()
    ids = torch.tensor([[0, 100, 200, 2], [0, 300, 2, 1]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about shapes that the dynamic axes cover
        torch.onnx.export(
            Pooled(encoder),
            (ids, mask),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}},
            opset_version=17,
            dynamo=False,
        )


def _optimise(raw: Path, optimised: Path) -> None:
    """Fuse the graph once (layer norms, GELU, MatMul with Add) so that loading it skips the optimiser (~1 s).

    The weights go to a separate file, which ONNX Runtime maps into memory instead of parsing and
    copying them: a session then opens in ~0.15 s instead of ~2.5 s (measured 2026-12-04).
    """
    import onnx
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # EXTENDED, not ALL: the saved graph stays free of this CPU's layout-specific kernels.
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    fused = optimised.with_name("fused.onnx")
    options.optimized_model_filepath = str(fused)
    onnxruntime.InferenceSession(str(raw), options, providers=["CPUExecutionProvider"])
    onnx.save_model(
        onnx.load(str(fused)),
        str(optimised),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=WEIGHTS_FILE,
        size_threshold=1024,
    )
    fused.unlink()
    (optimised.parent / WEIGHTS_FILE).chmod(0o644)  # readable by every user of a shared cache, as the graph


def _weight_table(model_path: Path) -> list[list[Any]]:
    """[name, numpy dtype, shape, offset, length] of each weight stored in WEIGHTS_FILE (read at export)."""
    import onnx
    from onnx import helper

    graph = onnx.load(str(model_path), load_external_data=False).graph
    table: list[list[Any]] = []
    for tensor in graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        where = {entry.key: entry.value for entry in tensor.external_data}
        if where.get("location") != WEIGHTS_FILE:
            raise OnnxExportError(f"poids {tensor.name} hors de {WEIGHTS_FILE}")
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).str
        table.append([tensor.name, dtype, list(tensor.dims), int(where.get("offset", 0)), int(where["length"])])
    return table


def export_onnx(source: Path, cache_dir: Path, model: SentenceTransformer) -> Path:
    """Export `model` (loaded from the folder `source`) once; return the export's folder.

    A current export is returned as is. The new one is checked against `model` on probe texts
    (cosine >= PARITY_MIN_COSINE) before it is renamed into place. Raises OnnxExportError for a model
    shape the exporter does not reproduce, ModelUnavailableError when the cache cannot be written.
    """
    target = onnx_folder(cache_dir, source)
    if _current(target, source):
        return target
    mode, normalise = _pooling(model)
    tokenizer = getattr(model.tokenizer, "backend_tokenizer", None)
    if tokenizer is None:
        raise OnnxExportError("pas de tokenizer « fast » (tokenizer.json)")

    def write(folder: Path) -> None:
        _export_graph(model, mode, normalise, folder / "raw.onnx")
        _optimise(folder / "raw.onnx", folder / MODEL_FILE)
        (folder / "raw.onnx").unlink()
        tokenizer.save(str(folder / TOKENIZER_FILE), pretty=False)
        stamp = {
            "exporter": EXPORTER_VERSION,
            "source": str(source),
            "source_sha256": source_hash(source),
            "fingerprint": _fingerprint(source),
            "pooling": mode,
            "normalise": normalise,
            "max_tokens": int(model.max_seq_length or 512),
            "weights": _weight_table(folder / MODEL_FILE),
        }
        (folder / STAMP_NAME).write_text(json.dumps(stamp, indent=1), encoding="utf-8")
        expected = np.asarray(model.encode(_PROBES, normalize_embeddings=True), dtype=np.float32)
        got = OnnxEncoder(folder, threads=1).encode(_PROBES)
        got /= np.linalg.norm(got, axis=1, keepdims=True)
        worst = float((expected * got).sum(axis=1).min())
        if worst < PARITY_MIN_COSINE:
            raise OnnxExportError(f"vecteurs ONNX trop éloignés de ceux de torch (cosinus {worst:.5f})")

    return build_folder(target, lambda folder: _current(folder, source) is not None, write, "l'export ONNX")


# --------------------------------------------------------------------------------------------------
# Inference (ONNX Runtime and tokenizers only: no torch)
# --------------------------------------------------------------------------------------------------


class OnnxEncoder:
    """An exported model and its tokenizer: texts in, pooled (and normalised) float32 vectors out.

    With `threads` > 1, a text embedded while no other is runs on `threads` intra-op threads without
    spin-waiting (faster alone, and no slower when another process holds the other core); texts
    embedded at the same time each take one thread, so concurrent users lose no throughput. Both
    sessions read the same weights, mapped once from WEIGHTS_FILE (measured in benchmarks/README.md).
    """

    tokenizer: Tokenizer
    dim: int

    def __init__(self, folder: Path, *, threads: int = 1) -> None:
        stamp = _read_stamp(folder) or {}
        # Most of the load (~1 s for e5's 250,000 pieces; tokenizers keeps the GIL, so a thread gains nothing).
        self.tokenizer = _load_tokenizer(folder / TOKENIZER_FILE, int(stamp.get("max_tokens", 512)))
        self._weights = _mapped_weights(folder, stamp.get("weights"))
        self.alone = self._session(folder, threads)
        self.together = self._session(folder, 1) if threads > 1 else self.alone
        self._running = 0
        self._running_lock = threading.Lock()
        width = self.alone.get_outputs()[0].shape[-1]
        self.dim = width if isinstance(width, int) else int(self.encode(["dim"]).shape[1])

    def _session(self, folder: Path, threads: int) -> InferenceSession:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # Settings.query_threads (PTCE_QUERY_THREADS)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL  # done at export
        # Spinning workers win ~3 ms on idle cores but double the time when another process holds one.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        for name, value in self._weights.items():
            options.add_initializer(name, value)
        return onnxruntime.InferenceSession(str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"])

    def _run(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]) -> Vector:
        with self._running_lock:
            session = self.alone if self._running == 0 else self.together
            self._running += 1
        try:
            (vectors,) = session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})
        finally:
            with self._running_lock:
                self._running -= 1
        return np.asarray(vectors, dtype=np.float32)

    def encode(self, texts: list[str], batch_size: int = 8) -> Vector:
        """Vectors of `texts` (already prefixed), shape (len(texts), dim)."""
        rows: list[Vector] = []
        for start in range(0, len(texts), batch_size):
            encodings = self.tokenizer.encode_batch(texts[start : start + batch_size])
            width = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(encodings), width), dtype=np.int64)  # padding: masked out, any id will do
            mask = np.zeros((len(encodings), width), dtype=np.int64)
            for row, encoding in enumerate(encodings):
                ids[row, : len(encoding.ids)] = encoding.ids
                mask[row, : len(encoding.ids)] = 1
            rows.append(self._run(ids, mask))
        return np.concatenate(rows) if rows else np.empty((0, getattr(self, "dim", 0)), dtype=np.float32)


def _mapped_weights(folder: Path, table: list[list[Any]] | None) -> dict[str, OrtValue]:
    """The weights of the stamp's table as ONNX Runtime values over one read-only memory map of WEIGHTS_FILE.

    Sessions given these share them (no copy each; pages of the 250,000-row word table never read stay on disk).
    """
    from onnxruntime import OrtValue

    if not table:
        raise OnnxExportError("l'empreinte de l'export ne situe pas ses poids")
    mapped = np.memmap(folder / WEIGHTS_FILE, dtype=np.uint8, mode="r")
    weights: dict[str, OrtValue] = {}
    for name, dtype, shape, offset, length in table:
        kind = np.dtype(dtype)
        array = np.frombuffer(mapped, dtype=kind, count=length // kind.itemsize, offset=offset).reshape(shape)
        weights[name] = OrtValue.ortvalue_from_numpy(array)
    return weights


def _load_tokenizer(path: Path, max_tokens: int) -> Tokenizer:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_tokens)
    return tokenizer


def load_onnx_encoder(source: Path, cache_dir: Path, *, threads: int = 1) -> OnnxEncoder | None:
    """The ONNX encoder of the model folder `source` if its export is current, else None with one log line."""
    folder = onnx_folder(cache_dir, source)
    if not (folder / STAMP_NAME).is_file():
        log.warning(
            "Pas d'export ONNX du modèle d'embedding dans %s : les questions passent par torch "
            "(plus lent au démarrage) ; lancez « ptce doctor --prepare » pour le créer.",
            folder,
        )
        return None
    if _current(folder, source) is None:
        log.warning(
            "L'export ONNX de %s ne correspond plus au modèle : les questions passent par torch ; "
            "lancez « ptce doctor --prepare » pour le refaire.",
            folder,
        )
        return None
    try:
        return OnnxEncoder(folder, threads=threads)
    except Exception as exc:  # onnxruntime raises its own types for a damaged file
        log.warning("Export ONNX illisible (%s: %s) : les questions passent par torch.", type(exc).__name__, exc)
        return None
