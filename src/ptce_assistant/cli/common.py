"""What every `ptce` command shares: the consoles, the exit codes, errors without tracebacks, input files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, get_args

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ptce_assistant.audit import EventAction
from ptce_assistant.config import Backend, Mode, get_settings
from ptce_assistant.conversation import Turn
from ptce_assistant.errors import PtceError

if TYPE_CHECKING:
    from ptce_assistant.assistant import Assistant

console = Console()
errors = Console(stderr=True)

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


@contextmanager
def user_errors() -> Iterator[None]:
    """Show the project's errors as one line, never a traceback."""
    try:
        yield
    except PtceError as exc:
        errors.print(f"[red]Erreur :[/red] {shown(str(exc))}", highlight=False)
        raise typer.Exit(EXIT_REJECTED) from None
    except KeyboardInterrupt:
        errors.print("Interrompu : l'index précédent reste intact.")
        raise typer.Exit(130) from None


def open_assistant() -> Assistant:
    """The facade, imported here on first use: `ptce app` starts Streamlit without loading it (~0.6 s)."""
    from ptce_assistant.assistant import Assistant

    return Assistant()


def shown(text: str) -> str:
    """User-controlled text (file names, messages) printed as is: no Rich markup, no control characters."""
    return escape("".join(c if c.isprintable() else repr(c)[1:-1] for c in text))


def progress_bar() -> Progress:
    """The progress bar of long commands (on stderr, so JSON on stdout stays clean)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    )


def checked_mode(mode: str | None, llm: str | None) -> tuple[Mode | None, Backend | None]:
    """--mode and --llm as the library's types; a usage error (exit 2) unless they are documented values."""
    if mode not in (None, *get_args(Mode)) or llm not in (None, *get_args(Backend)):
        errors.print("--mode vaut extractive ou generative ; --llm vaut local ou openai.")
        raise typer.Exit(EXIT_USAGE)
    return cast("Mode | None", mode), cast("Backend | None", llm)


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """The cases of a --batch file, numbered by line; PtceError naming the line of a bad one."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise PtceError(f"{path}: lecture impossible ({exc.strerror})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PtceError(f"{path}:{number}: JSON invalide ({exc.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("question"), str):
            raise PtceError(f"{path}:{number}: un objet avec un champ « question » est attendu")
        yield number, record


def history_turns(raw: Any, where: str) -> list[Turn]:
    """The turns of a « history » field; PtceError naming `where` when it is not a list of turns."""
    try:
        return [Turn.model_validate(t) for t in raw or []]
    except ValueError:
        raise PtceError(f"{where}: « history » doit être une liste de {{role: user|assistant, content}}") from None


def write_file(path: Path, data: bytes) -> None:
    """Write `data` to `path`, or PtceError naming the file."""
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise PtceError(f"{path} : écriture impossible ({exc.strerror})") from None


def trace(action: EventAction, detail: dict[str, Any]) -> None:
    """Record a command's action under the OS user; an unavailable log is reported, not fatal."""
    from ptce_assistant.access import os_person
    from ptce_assistant.audit import open_audit_log

    try:
        open_audit_log(get_settings()).log_event(os_person().subject, action, detail)
    except PtceError as exc:
        errors.print(f"[yellow]Journal d'audit :[/yellow] {shown(str(exc))}", highlight=False)
