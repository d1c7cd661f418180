"""`ptce doctor`: check the installation, or (--prepare) build the models it needs."""

from __future__ import annotations

from typing import Annotated

import typer

from ptce_assistant.cli.common import EXIT_REJECTED, console
from ptce_assistant.config import get_settings


def doctor(
    prepare: Annotated[
        bool, typer.Option("--prepare", help="Seulement construire les modèles (installation).")
    ] = False,
) -> None:
    """Vérifier l'installation : modèles, index, navigateur ; dit quoi corriger."""
    from ptce_assistant.diagnostics import prepare_models, run_checks

    settings = get_settings()
    failed = False
    for check in prepare_models(settings) if prepare else run_checks(settings):
        mark = "[green]ok[/green]" if check.ok else ("[yellow]!![/yellow]" if check.optional else "[red]KO[/red]")
        console.print(f"{mark} {check.name}: {check.detail}", highlight=False)
        failed |= not check.ok and not check.optional
    if failed:
        raise typer.Exit(EXIT_REJECTED)
