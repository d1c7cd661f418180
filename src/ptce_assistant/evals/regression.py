"""The regression gate (minimums per split in evals/thresholds.toml) and report-to-report comparison."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ptce_assistant.config import PROJECT_ROOT
from ptce_assistant.errors import PtceError
from ptce_assistant.evals.records import ASSISTANT, EvalReport

DEFAULT_THRESHOLDS = PROJECT_ROOT / "evals" / "thresholds.toml"
Bound = Literal["min", "max"]
# mode -> split -> "min"|"max" -> metric -> limit
Thresholds = dict[str, dict[str, dict[Bound, dict[str, float]]]]


@dataclass(frozen=True)
class Shortfall:
    """A headline metric of the assistant on the wrong side of its threshold."""

    split: str
    metric: str
    measured: float | None
    bound: Bound
    limit: float

    def __str__(self) -> str:
        measured = "not measured" if self.measured is None else f"{self.measured:.3f}"
        word = "minimum" if self.bound == "min" else "maximum"
        return f"{self.split}: {self.metric} = {measured}, {word} {self.limit:.3f}"


def load_thresholds(path: Path = DEFAULT_THRESHOLDS) -> Thresholds:
    """Read thresholds.toml: [MODE.SPLIT.min] / [MODE.SPLIT.max] tables of metric = limit."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PtceError(f"{path}: seuils illisibles ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise PtceError(f"{path}: TOML invalide ({exc})") from None
    thresholds: Thresholds = {}
    for mode, splits in raw.items():
        for split, bounds in _table(splits, f"{path}: [{mode}]").items():
            bounds = _table(bounds, f"{path}: [{mode}.{split}]")
            if unknown := set(bounds) - {"min", "max"}:
                raise PtceError(f"{path}: [{mode}.{split}.{min(unknown)}] : seuls « min » et « max » sont permis")
            bound: Bound
            for bound in ("min", "max"):
                table = thresholds.setdefault(mode, {}).setdefault(split, {}).setdefault(bound, {})
                for metric, limit in _table(bounds.get(bound, {}), f"{path}: [{mode}.{split}.{bound}]").items():
                    if not isinstance(limit, int | float) or isinstance(limit, bool):
                        raise PtceError(f"{path}: {mode}.{split}.{bound}.{metric} doit être un nombre")
                    table[metric] = float(limit)
    return thresholds


def _table(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise PtceError(f"{where} doit être une table")
    return value


def check_thresholds(report: EvalReport, thresholds: Thresholds) -> list[Shortfall]:
    """Every assistant metric of the report's splits below its minimum (or above its maximum)."""
    shortfalls = []
    for split, summary in report.splits.items():
        for bound, limits in thresholds.get(report.run.mode, {}).get(split, {}).items():
            for metric, limit in limits.items():
                value = summary.metrics[ASSISTANT].get(metric)
                measured = value.value if value else None
                bad = measured is None or (measured < limit if bound == "min" else measured > limit)
                if bad:
                    shortfalls.append(Shortfall(split, metric, measured, bound, limit))
    return shortfalls


def unchecked_splits(report: EvalReport, thresholds: Thresholds) -> list[str]:
    """Splits of the report that have no threshold for its mode."""
    return [s for s in report.splits if s not in thresholds.get(report.run.mode, {})]


# Comparison ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricDelta:
    """A metric of one system on one split, before and after."""

    split: str
    system: str
    metric: str
    before: float | None
    after: float | None

    @property
    def delta(self) -> float | None:
        """after - before, when both were measured."""
        return None if self.before is None or self.after is None else self.after - self.before


@dataclass(frozen=True)
class CaseFlip:
    """A case whose pass/fail on a metric changed between two reports."""

    split: str
    case_id: str
    metric: str
    before: bool
    after: bool

    @property
    def direction(self) -> str:
        """'pass→fail' or 'fail→pass'."""
        return "pass→fail" if self.before else "fail→pass"


@dataclass(frozen=True)
class Comparison:
    """What changed from report A to report B."""

    deltas: list[MetricDelta]
    flips: list[CaseFlip]
    only_before: list[str]
    only_after: list[str]


def compare_reports(before: EvalReport, after: EvalReport) -> Comparison:
    """Metric deltas on shared splits and systems, and the assistant's case-by-case flips."""
    deltas = []
    for split in before.splits.keys() & after.splits.keys():
        a, b = before.splits[split].metrics, after.splits[split].metrics
        for system in [s for s in after.systems if s in a and s in b]:
            for metric, value in b[system].items():
                previous = a[system].get(metric)
                deltas.append(MetricDelta(split, system, metric, previous.value if previous else None, value.value))
    deltas.sort(key=lambda d: (list(after.splits).index(d.split), after.systems.index(d.system)))
    old_cases = {(c.split, c.id): c for c in before.cases}
    new_cases = {(c.split, c.id): c for c in after.cases}
    flips = []
    for key, new in new_cases.items():
        old = old_cases.get(key)
        if old is None:
            continue
        for metric, ok in new.passed.items():
            was = old.passed.get(metric)
            if was is not None and ok is not None and was != ok:
                flips.append(CaseFlip(key[0], key[1], metric, was, ok))
    return Comparison(
        deltas=deltas,
        flips=flips,
        only_before=[f"{s}/{i}" for s, i in old_cases.keys() - new_cases.keys()],
        only_after=[f"{s}/{i}" for s, i in new_cases.keys() - old_cases.keys()],
    )


def format_comparison(comparison: Comparison) -> str:
    """Plain text: changed metrics, then flipped cases grouped by case."""

    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = ["Metric deltas (A -> B):"]
    changed = [d for d in comparison.deltas if d.before != d.after]
    lines += [
        f"  {d.split:<8} {d.system:<9} {d.metric:<24} {number(d.before)} -> {number(d.after)}"
        + (f"  ({d.delta:+.3f})" if d.delta is not None else "")
        for d in changed
    ]
    if not changed:
        lines.append("  (none)")
    lines.append("Cases that flipped (assistant):")
    by_case: dict[tuple[str, str], list[CaseFlip]] = {}
    for flip in comparison.flips:
        by_case.setdefault((flip.split, flip.case_id), []).append(flip)
    for (split, case_id), flips in sorted(by_case.items()):
        lines.append(f"  {split}/{case_id}: " + ", ".join(f"{f.metric} {f.direction}" for f in flips))
    if not by_case:
        lines.append("  (none)")
    if comparison.only_before or comparison.only_after:
        lines.append(
            f"Cases only in A: {', '.join(sorted(comparison.only_before)) or '-'}; "
            f"only in B: {', '.join(sorted(comparison.only_after)) or '-'}"
        )
    return "\n".join(lines)
