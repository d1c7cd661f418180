"""Re-record evals/thresholds.toml from a committed eval report (the policy of the file's header).

Usage: .venv/bin/python scripts/record_thresholds.py evals/reports/extractive/report.json [--out evals/thresholds.toml]

Each minimum is the measured value minus 0.03 rounded down (about one case), each maximum the value
plus 0.03 rounded up; citation_validity is an invariant (minimum 1.0); supported_sentence_rate (1.0 by
construction in extractive mode) and the right_sentence_word_overlap baseline are not gated.
"""

from __future__ import annotations

import argparse
import math
from datetime import date
from pathlib import Path

from ptce_assistant.evals.metrics import HEADLINE_METRICS, LOWER_IS_BETTER
from ptce_assistant.evals.records import ASSISTANT, load_report

MARGIN = 0.03
# Gated: every headline metric but the extractive-mode invariant and the word-overlap baseline.
UNGATED = frozenset({"supported_sentence_rate", "right_sentence_word_overlap"})
MINIMA = tuple(m for m in HEADLINE_METRICS if m not in UNGATED and m not in LOWER_IS_BETTER)
MAXIMA = tuple(m for m in HEADLINE_METRICS if m in LOWER_IS_BETTER)
ROLES = {
    "dev": "the tuning split: thesaurus built on it, calibration fitted on it",
    "heldout": "validation split: calibration fitted on it",
    "heldout-blind": "validation split: calibration fitted on it",
    "heldout-blind-2": "validation split: calibration fitted on it, sentence threshold chosen on it",
    "heldout-blind-3": "validation split since session 6: its failures shaped the answer types, gate fitted on it",
    "heldout-blind-4": "validation split since session 8: run once in session 7, its failures shaped session 8",
    "heldout-blind-5": "validation split since session 8: run once mid-session 8, its failures shaped its 2nd round",
    "heldout-blind-6": "test split: written blind mid-session 8, before its second round, run once at its end",
}


def render(report_path: Path) -> str:
    """The thresholds file for every split of the report."""
    report = load_report(report_path)
    lines = [
        "# Regression gate for `ptce eval ... --check`: [MODE.SPLIT.min] / [MODE.SPLIT.max] tables of",
        "# headline metrics of the assistant (names as in report.json). A split without a table is not checked.",
        "#",
        f"# Re-recorded on {date.today().isoformat()} by scripts/record_thresholds.py from the committed run",
        f"# ({report_path.parent.as_posix()}): each minimum is the measured value minus {MARGIN} rounded down",
        f"# (about one case), each maximum the value plus {MARGIN} rounded up. citation_validity is an invariant",
        "# (quotes are verbatim), so its minimum is 1.0. supported_sentence_rate is not gated in extractive mode:",
        "# it is 1.0 by construction there. right_sentence_word_overlap is a baseline, not gated.",
        "# Limits only record the measured value so that a change cannot silently lose ground; they are not",
        "# targets (the issues' targets are in the README). Split roles: SPLIT_ROLES in evals/records.py.",
        "# Generative mode has no thresholds: it depends on the LLM available on the machine.",
    ]
    mode = report.run.mode
    for name, split in report.splits.items():
        metrics = split.metrics[ASSISTANT]
        role = ROLES.get(name, "")
        lines += ["", "", f"[{mode}.{name}.min]" + (f"  # {role}" if role else "")]
        for metric in MINIMA:
            value = metrics.get(metric)
            if value is None or value.value is None:
                continue
            floor = 1.0 if metric == "citation_validity" else math.floor((value.value - MARGIN) * 100) / 100
            lines.append(f'"{metric}" = {max(floor, 0.0):.2f}  # measured {value.value:.3f} (n={value.n})')
        lines += ["", f"[{mode}.{name}.max]"]
        for metric in MAXIMA:
            value = metrics.get(metric)
            if value is None or value.value is None:
                continue
            ceiling = math.ceil((value.value + MARGIN) * 100) / 100
            lines.append(f"{metric} = {min(ceiling, 1.0):.2f}  # measured {value.value:.3f}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--out", type=Path, default=Path("evals/thresholds.toml"))
    args = parser.parse_args()
    args.out.write_text(render(args.report), encoding="utf-8")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
