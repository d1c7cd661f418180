"""Calibrated decisions: the logistic models, the shipped calibration, `ptce eval calibrate`, and their use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ptce_assistant.answering.calibration import LinearModel, fit_logistic, load_calibration, read_calibration
from ptce_assistant.answering.evidence import SENTENCE_FEATURES, sentence_candidates, weighted_share
from ptce_assistant.answering.gate import GATE_FEATURES, GATE_SIGNS, Evidence, decide, unknown_names
from ptce_assistant.assistant import Assistant
from ptce_assistant.cli import app
from ptce_assistant.config import PROJECT_ROOT, Settings, get_settings
from ptce_assistant.errors import PtceError

SPLITS = ("dev", "heldout", *(f"heldout-blind{n}" for n in ("", "-2", "-3", "-4", "-5")))


def _evidence(**values: object) -> Evidence:
    base: dict[str, object] = {
        "top_dense": 0.86,
        "dense_margin": 0.01,
        "best_sentence": 0.86,
        "coverage": 0.5,
        "unknown_share": 0.2,
        "unknown_terms": [],
        "query_terms": 4,
    }
    return Evidence.model_validate(base | values)


def test_a_linear_model_is_a_standardised_logistic() -> None:
    model = LinearModel(features=["x", "y"], mean=[1.0, 0.0], scale=[2.0, 1.0], coef=[1.0, -1.0], intercept=0.0)
    assert model.probability({"x": 1.0, "y": 0.0}) == pytest.approx(0.5)
    assert model.probability({"x": 3.0, "y": 0.0}) > 0.7 > 0.3 > model.probability({"x": 1.0, "y": 1.0})
    assert model.probability({}) == pytest.approx(0.5)  # a missing feature counts as its mean


def test_fitting_learns_the_direction_and_reports_held_out_folds() -> None:
    rows = [{"signal": i / 20, "noise": (i * 7) % 5} for i in range(40)]
    labels = [row["signal"] > 1.0 for row in rows]
    model = fit_logistic(rows, labels, ["signal", "noise"])
    assert model.coef[0] > 0 and abs(model.coef[1]) < model.coef[0]
    assert set(model.cross_validation) == {"folds", "accuracy", "recall_yes", "recall_no"}
    assert model.cross_validation["accuracy"] >= 0.9
    with pytest.raises(PtceError, match="positifs et négatifs"):
        fit_logistic(rows, [True] * len(rows), ["signal"])


def test_a_feature_fitted_against_its_direction_is_left_out() -> None:
    """Two copies of one signal: the fit splits their weight, one may turn negative; a sign keeps it out."""
    rows = [{"signal": i / 20, "copy": i / 20 + ((i * 7) % 5) / 50} for i in range(40)]
    labels = [row["signal"] > 1.0 for row in rows]
    free = fit_logistic(rows, labels, ["signal", "copy"])
    held = fit_logistic(rows, labels, ["signal", "copy"], signs={"signal": 1, "copy": -1})
    assert free.coef[1] > 0  # unconstrained, the copy weighs in its natural direction
    assert held.coef[1] == 0.0 and held.coef[0] > 0  # held against it, it is left out and the signal carries the fit
    assert held.probability({"signal": 2.0, "copy": 2.0}) > 0.5 > held.probability({"signal": 0.0, "copy": 0.0})


def test_the_shipped_calibration_records_what_trained_it() -> None:
    calibration = load_calibration()
    assert tuple(calibration.gate.features) == GATE_FEATURES
    assert tuple(calibration.sentence.features) == SENTENCE_FEATURES
    files = calibration.provenance.files
    assert set(files) == {f"evals/{split}.jsonl" for split in SPLITS}  # dev and validation, never a blind test split
    assert "heldout-blind-6" not in json.dumps(calibration.model_dump())
    assert calibration.provenance.examples["gate"] > 100 and calibration.gate.cross_validation["accuracy"] > 0.9
    for name, coef in zip(calibration.gate.features, calibration.gate.coef, strict=True):
        assert GATE_SIGNS.get(name, 0) * coef >= 0, name  # each weight in its direction, or left out


def test_an_unreadable_calibration_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(PtceError, match="PTCE_CALIBRATION_FILE"):
        read_calibration(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"gate": 1}', encoding="utf-8")
    with pytest.raises(PtceError, match="ptce eval calibrate"):
        read_calibration(bad)


def test_the_gate_follows_its_model_and_keeps_list_items_named_by_the_conversation() -> None:
    model = load_calibration().gate
    strong, weak = (
        _evidence(top_dense=0.9, coverage=0.9),
        _evidence(top_dense=0.79, best_sentence=0.79, coverage=0.0, unknown_share=0.9),
    )
    assert decide(strong, model).answerable and decide(strong, model).confidence > 0.8
    assert not decide(weak, model).answerable
    assert decide(weak, model, pinned=True).answerable and decide(weak, model, pinned=True).confidence == 0.8
    named = decide(_evidence(unknown_names=["Bretagne"], unknown_terms=["bretagn"]), model)
    assert not named.answerable and named.reason == "names what the corpus never mentions: Bretagne"


def test_unknown_names_are_the_capitalised_words_the_corpus_never_uses(assistant: Assistant) -> None:
    vocabulary = assistant.vocabulary
    assert unknown_names("Quelles coopératives agricoles de Bretagne font partie d'un PTCE ?", vocabulary) == [
        "Bretagne"
    ]
    assert unknown_names("Quel est le rôle de l'ESS selon le RTES ?", vocabulary) == []
    assert unknown_names("Bretagne : quelles coopératives ?", vocabulary) == []  # a first word is not a name
    assert unknown_names("What did the study say in March about the ESS?", vocabulary) == []
    # The institution written with a capital by convention is not a name (blind2-005, blind4-006, blind4-034).
    assert unknown_names("Est-ce que c'est l'État qui les crée ?", vocabulary) == []
    assert unknown_names("Does the State sign these contracts with Normandie?", vocabulary) == ["Normandie"]


def test_term_shares_weigh_rare_words_more() -> None:
    idf = {"rare": 3.0, "common": 1.0}.__getitem__
    assert weighted_share(["rare", "common"], {"rare"}, idf) == pytest.approx(0.75)
    assert weighted_share([], {"rare"}, idf) == 0.0


def test_sentences_are_ranked_by_the_model_over_their_own_similarity(assistant: Assistant) -> None:
    question = "Les porteurs de projets arrivent-ils à stabiliser un fonctionnement économique équilibré ?"
    findings = assistant.examine(question)
    best = findings.sentences[0]
    assert best.text.startswith("Pour leur grande majorité, les porteurs de projets")
    assert best.probability == max(c.probability for c in findings.sentences)
    vector = assistant.embedder.encode_query(question)
    flat = LinearModel(features=[], mean=[], scale=[], coef=[], intercept=0.0)
    scored = sentence_candidates(vector, [], findings.result.hits, assistant.index.sentences, lambda _: 1.0, flat)
    assert {c.probability for c in scored} == {0.5}  # the model, not the order of passages, makes the ranking


def test_a_calibration_file_in_the_settings_is_the_one_used(assistant: Assistant, tmp_path: Path) -> None:
    never = load_calibration().model_copy(deep=True)
    never.gate.threshold = 1.01  # no evidence is ever enough
    path = tmp_path / "never.json"
    path.write_text(never.model_dump_json(), encoding="utf-8")
    strict = Assistant(assistant.settings.model_copy(update={"calibration_file": path}))
    assert strict.ask("Quel est le rôle des collectivités dans l'accompagnement ?").abstained
    assert not assistant.ask("Quel est le rôle des collectivités dans l'accompagnement ?").abstained


def test_ptce_eval_calibrate_fits_on_the_given_cases_and_writes_a_usable_file(
    monkeypatch: pytest.MonkeyPatch, shared_settings: Settings, assistant: Assistant, tmp_path: Path
) -> None:
    monkeypatch.setenv("PTCE_INDEX_DIR", str(shared_settings.index_dir))
    monkeypatch.setenv("PTCE_AUDIT_DB", str(tmp_path / "audit.sqlite3"))
    get_settings.cache_clear()
    out = tmp_path / "mine.json"
    try:
        result = CliRunner().invoke(
            app, ["eval", "calibrate", str(PROJECT_ROOT / "evals" / "dev.jsonl"), "--out", str(out)]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "validation croisée" in result.output and "PTCE_CALIBRATION_FILE" in result.output
    calibration = read_calibration(out)
    assert list(calibration.provenance.files) == ["evals/dev.jsonl"] and calibration.provenance.cases == 78
    assert calibration.sentence.threshold == load_calibration().sentence.threshold
