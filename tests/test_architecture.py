"""The layers contract (pyproject [tool.importlinter]): a module never imports a layer above its own."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_no_module_imports_a_layer_above_its_own() -> None:
    run = _lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 kept, 0 broken" in run.stdout


def test_the_contract_catches_an_import_pointing_back_up(tmp_path: Path) -> None:
    """The same contract with the base text module moved on top: the facade's import of it now points up."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    layers = [layer for layer in config["contracts"][0]["layers"] if "ptce_assistant.cli" not in layer]
    layers = ["ptce_assistant.text", *[layer.replace("ptce_assistant.text | ", "") for layer in layers]]
    lines = [
        "[importlinter]",
        "root_packages =\n    ptce_assistant",
        "[importlinter:contract:layers]",
        "name = moved",
        "type = layers",
        "layers =\n" + "\n".join(f"    {layer}" for layer in layers),
    ]
    (tmp_path / ".importlinter").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = _lint_imports(tmp_path, "--config", str(tmp_path / ".importlinter"))
    assert run.returncode != 0
    assert "BROKEN" in run.stdout and "ptce_assistant.text" in run.stdout
