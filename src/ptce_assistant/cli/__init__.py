"""`ptce`: the command line. Each command parses, calls the Assistant facade (or the evals API), prints.

One module per command family: querying (search, ask, chat), indexing (ingest), evaluating (eval),
installing (doctor), serving (app, serve-llm), auditing (audit …); common holds what they share.
"""

from __future__ import annotations

import typer

from ptce_assistant.cli import evaluating, indexing, installing, querying, serving
from ptce_assistant.cli.auditing import audit_app

app = typer.Typer(
    help="Assistant sourcé sur l'étude RTES 2014 « Les PTCE et le rôle des collectivités ».",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(indexing.ingest)
app.command()(querying.search)
app.command()(querying.ask)
app.command()(querying.chat)
app.command()(installing.doctor)
app.command("eval")(evaluating.evaluate)
app.command("app")(serving.run_app)
app.command("serve-llm")(serving.serve_llm)
app.add_typer(audit_app, name="audit")


def main() -> None:
    """Entry point for `python -m ptce_assistant.cli`."""
    app()


__all__ = ["app", "main"]
