"""CI runs the regression gate on the extractive mode over every committed eval set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ptce_assistant.cli import app
from ptce_assistant.config import PROJECT_ROOT, get_settings

SETS = [
    PROJECT_ROOT / "evals" / name
    for name in (
        "dev.jsonl",
        "heldout.jsonl",
        "heldout-blind.jsonl",
        "heldout-blind-2.jsonl",
        "heldout-blind-3.jsonl",
        "heldout-blind-4.jsonl",
        "heldout-blind-5.jsonl",
        "heldout-blind-6.jsonl",
    )
]


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("PTCE_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("PTCE_AUDIT_DB", str(tmp_path / "audit.sqlite3"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_extractive_metrics_stay_above_their_thresholds(isolated: Path) -> None:
    out = isolated / "report"
    result = CliRunner().invoke(
        app, ["eval", *map(str, SETS), "--mode", "extractive", "--check", "--no-baselines", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (out / "report.json").exists()
