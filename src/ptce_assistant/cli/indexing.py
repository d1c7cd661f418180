"""`ptce ingest`: index the corpus and print what each document became."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ptce_assistant.cli.common import (
    EXIT_REJECTED,
    console,
    errors,
    open_assistant,
    progress_bar,
    shown,
    trace,
    user_errors,
)


def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="Fichiers ou dossiers (défaut : le corpus).")] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Reconstruire l'index de zéro.")] = False,
) -> None:
    """Indexer le corpus (incrémental : seuls les documents nouveaux ou modifiés sont ré-encodés)."""
    with user_errors():
        assistant = open_assistant()
        with progress_bar() as progress:
            tasks: dict[str, Any] = {}

            def update(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = progress.add_task(stage, total=total)
                progress.update(tasks[stage], completed=done, total=total)

            report = assistant.ingest(paths or None, rebuild=rebuild, progress=update)
        table = Table("document", "statut", "passages", "détail", title="Ingestion")
        for outcome in report.outcomes:
            colour = {"rejected": "red", "removed": "yellow", "unchanged": "dim"}.get(outcome.status, "green")
            table.add_row(
                shown(outcome.path),
                f"[{colour}]{outcome.status}[/{colour}]",
                str(outcome.chunks),
                shown(outcome.error or ""),
            )
        console.print(table)
        console.print(
            f"{report.chunks_embedded} passages encodés en {report.seconds:.1f} s "
            f"({report.chunks_per_second:.0f}/s) ; {report.chunks_total} passages dans l'index."
        )
        for outcome in report.rejected:
            errors.print(f"[red]rejeté[/red] {shown(outcome.path)}: {shown(outcome.error or '')}", highlight=False)
        detail = {"rebuild": rebuild, "changed": len(report.changed), "rejected": len(report.rejected)}
        trace("ingest", {**detail, "chunks": report.chunks_total})
    if report.rejected:
        raise typer.Exit(EXIT_REJECTED)
