"""Calibrated decisions: small logistic models fitted on eval cases, shipped as data with their provenance.

Two models decide what a user reads: the gate's (does the corpus answer?) and the sentence
selector's (does this sentence carry the answer?). Both are a standardised linear score passed
through a sigmoid; their coefficients live in `data/calibration.json`, written by
`ptce eval calibrate`, which records which cases and which commit trained them. scikit-learn
fits them; answering needs only numpy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, Field

from ptce_assistant.errors import PtceError, read_record

PACKAGED = "calibration.json"


class LinearModel(BaseModel):
    """p = sigmoid(intercept + sum(coef * (x - mean) / scale)) over named features."""

    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    threshold: float = Field(default=0.5, description="Decide 'yes' at or above this probability.")
    cross_validation: dict[str, float] = Field(default_factory=dict, description="Held-out folds' scores.")

    def probability(self, values: Mapping[str, float]) -> float:
        """The model's probability for one example (missing features count as their mean)."""
        z = self.intercept
        for name, mean, scale, coef in zip(self.features, self.mean, self.scale, self.coef, strict=True):
            z += coef * (values.get(name, mean) - mean) / (scale or 1.0)
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


class Provenance(BaseModel):
    """What trained a calibration: eval files with their hashes, case counts, commit and date."""

    files: dict[str, str] = Field(description="eval file -> sha256 of its content")
    cases: int
    examples: dict[str, int] = Field(default_factory=dict, description="model -> training examples")
    commit: str | None = None
    date: str
    note: str = ""


class Calibration(BaseModel):
    """The gate's model and the sentence selector's, with what trained them."""

    gate: LinearModel
    sentence: LinearModel
    provenance: Provenance


def fit_logistic(
    rows: Sequence[Mapping[str, float]],
    labels: Sequence[bool],
    features: Sequence[str],
    folds: int = 5,
    signs: Mapping[str, int] | None = None,
) -> LinearModel:
    """Fit a standardised, L2-regularised logistic regression; report its accuracy on held-out folds.

    `signs` gives the direction a feature may weigh in (+1: more of it never means "no"). A feature
    fitted against its direction is left out and the model refitted: with correlated features, a
    wrong-signed weight only fits the training cases (a refit once answered "une recette de crêpes"
    because terms covered weighed negatively beside the sentence similarity).
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.array([[row[f] for f in features] for row in rows], dtype=float)
    y = np.array(labels, dtype=int)
    if len(set(y.tolist())) < 2:
        raise PtceError("calibration impossible : il faut des exemples positifs et négatifs (cas répondables et non)")
    kept = list(range(len(features)))
    while True:
        pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000))
        pipeline.fit(x[:, kept], y)
        weights = dict(zip(kept, pipeline[1].coef_[0], strict=True))
        wrong = [i for i in kept if (signs or {}).get(features[i], 0) * weights[i] < 0]
        if not wrong:
            break
        kept.remove(min(wrong, key=lambda i: abs(weights[i])))
    splits = min(folds, int(np.bincount(y).min()))
    cv: dict[str, float] = {}
    if splits >= 2:
        predicted = cross_val_predict(pipeline, x[:, kept], y, cv=StratifiedKFold(splits, shuffle=True, random_state=0))
        cv = {
            "folds": float(splits),
            "accuracy": float((predicted == y).mean()),
            "recall_yes": float(predicted[y == 1].mean()),
            "recall_no": float(1 - predicted[y == 0].mean()),
        }
    return LinearModel(  # the scaler's mean and scale are the columns' own, left-out features included
        features=list(features),
        mean=[float(v) for v in x.mean(axis=0)],
        scale=[float(v or 1.0) for v in x.std(axis=0)],
        coef=[float(weights.get(i, 0.0)) for i in range(len(features))],
        intercept=float(pipeline[1].intercept_[0]),
        cross_validation=cv,
    )


def read_calibration(path: Path) -> Calibration:
    """A calibration file, or PtceError saying how to produce a valid one."""
    return read_record(
        path,
        Calibration,
        "calibration illisible, corrigez PTCE_CALIBRATION_FILE",
        "ce n'est pas un fichier de calibration, régénérez-le avec « ptce eval calibrate »",
    )


@lru_cache(maxsize=4)
def load_calibration(path: Path | None = None) -> Calibration:
    """The calibration in force: `path` (PTCE_CALIBRATION_FILE) or the one shipped with the package."""
    if path is not None:
        return read_calibration(path)
    with resources.as_file(resources.files("ptce_assistant.data") / PACKAGED) as packaged:
        return read_calibration(packaged)
