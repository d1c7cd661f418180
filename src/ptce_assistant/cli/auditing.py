"""`ptce audit`: export, purge and turn into eval drafts the audit log of questions and feedback."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ptce_assistant.cli.common import EXIT_USAGE, errors, user_errors, write_file
from ptce_assistant.config import get_settings
from ptce_assistant.errors import PtceError

audit_app = typer.Typer(help="Journal d'audit des questions et des avis (SQLite).", no_args_is_help=True)


@audit_app.command("export")
def audit_export(
    format: Annotated[str, typer.Option("--format", help="jsonl | csv")] = "jsonl",
    out: Annotated[Path | None, typer.Option("--out", help="Fichier de sortie (défaut : sortie standard).")] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Les seules entrées de cette personne (sub, « local », os:NOM).")
    ] = None,
    events: Annotated[
        bool, typer.Option("--events", help="Les ajouts, retraits, ingestions, exports et purges au lieu des tours.")
    ] = False,
) -> None:
    """Exporter les tours de conversation et leurs avis (ou les événements), de tous ou d'une personne."""
    from ptce_assistant.access import os_person
    from ptce_assistant.audit import open_audit_log

    if format not in ("jsonl", "csv"):
        errors.print("--format vaut jsonl ou csv.")
        raise typer.Exit(EXIT_USAGE)
    table = "events" if events else "turns"
    actor = os_person().subject
    with user_errors():
        log = open_audit_log(get_settings())
        if out is None:
            count = log.export(format, sys.stdout, actor=actor, user=user, table=table)  # type: ignore[arg-type]
        else:
            try:
                with open(out, "w", encoding="utf-8", newline="") as handle:
                    count = log.export(format, handle, actor=actor, user=user, table=table)  # type: ignore[arg-type]
            except OSError as exc:
                raise PtceError(f"{out}: écriture impossible ({exc.strerror})") from None
        errors.print(f"{count} {'événement(s)' if events else 'tour(s)'} exporté(s).")


@audit_app.command("purge")
def audit_purge(
    user: Annotated[
        str | None,
        typer.Option("--user", help="Effacer toutes les entrées de cette personne (droit à l'effacement)."),
    ] = None,
) -> None:
    """Effacer les entrées d'une personne, ou (sans --user) celles qui dépassent PTCE_AUDIT_RETENTION_DAYS."""
    from ptce_assistant.access import os_person
    from ptce_assistant.audit import AuditLog

    settings = get_settings()  # the log is opened without retention: this command says what it purges
    days = settings.audit_retention_days
    if user is None and days <= 0:
        errors.print("PTCE_AUDIT_RETENTION_DAYS vaut 0 (conservation sans limite) : rien à purger sans --user.")
        raise typer.Exit(EXIT_USAGE)
    with user_errors():
        log = AuditLog(settings.audit_db)
        actor = os_person().subject
        purged = log.purge_user(user, actor=actor) if user is not None else log.purge_older_than(days, actor=actor)
        scope = "de cette personne" if user is not None else f"de plus de {days} jours"
        errors.print(f"{purged.turns} tour(s), {purged.feedback} avis et {purged.events} événement(s) {scope} effacés.")


@audit_app.command("drafts")
def audit_drafts(
    out: Annotated[Path | None, typer.Option("--out", help="Fichier JSONL (défaut : sortie standard).")] = None,
) -> None:
    """Transformer les réponses mal notées en cas d'évaluation à relire (tags from-feedback, needs-review)."""
    from ptce_assistant.audit import open_audit_log
    from ptce_assistant.evals.dataset import cases_from_feedback

    with user_errors():
        lines = [case.model_dump_json() for case in cases_from_feedback(open_audit_log(get_settings()))]
        text = "".join(line + "\n" for line in lines)
        if out is None:
            sys.stdout.write(text)
        else:
            write_file(out, text.encode("utf-8"))
        errors.print(f"{len(lines)} cas à relire.")
