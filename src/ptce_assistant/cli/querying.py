"""`ptce search`, `ptce ask` and `ptce chat`: passages and answers, one at a time or from a batch file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markdown import Markdown
from rich.table import Table

from ptce_assistant.answering.answer import Answer
from ptce_assistant.cli.common import (
    EXIT_USAGE,
    checked_mode,
    console,
    errors,
    history_turns,
    open_assistant,
    read_jsonl,
    shown,
    user_errors,
    write_file,
)
from ptce_assistant.config import Backend, Mode
from ptce_assistant.conversation import Turn
from ptce_assistant.errors import PtceError
from ptce_assistant.exports import FORMATS, ExportFormat

if TYPE_CHECKING:
    from ptce_assistant.assistant import Assistant


def search(
    query: Annotated[str | None, typer.Argument(help="La requête.")] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Nombre de passages.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Sortie JSON.")] = False,
    batch: Annotated[Path | None, typer.Option("--batch", help="Fichier JSONL de cas (id, question, history).")] = None,
) -> None:
    """Recherche hybride (dense + BM25 français, fusion RRF)."""
    if (query is None) == (batch is None):
        errors.print("Donnez soit une REQUÊTE, soit --batch FICHIER.jsonl.")
        raise typer.Exit(EXIT_USAGE)
    with user_errors():
        assistant = open_assistant()
        if batch is not None:
            for number, case in read_jsonl(batch):
                history = history_turns(case.get("history"), f"{batch}:{number}")
                standalone, result = assistant.retrieve(case["question"], history, k=k)
                record = {
                    "id": case.get("id", str(number)),
                    "standalone_query": standalone.text,
                    "hits": [h.record() for h in result.hits],
                    "timings_ms": {n: round(v, 2) for n, v in result.timings_ms.items()},
                }
                print(json.dumps(record, ensure_ascii=False), flush=True)
            return
        assert query is not None
        result = assistant.search(query, k=k)
        if as_json:
            record = {"query": query, "hits": [h.record() for h in result.hits], "timings_ms": result.timings_ms}
            print(json.dumps(record, ensure_ascii=False, indent=2))
            return
        table = Table("#", "passage", "section", "dense", "BM25", title=f"« {query} »")
        for hit in result.hits:
            table.add_row(
                str(hit.rank),
                hit.chunk.text[:160],
                hit.chunk.heading[:40],
                str(hit.dense_rank or "-"),
                str(hit.lexical_rank or "-"),
            )
        console.print(table)


def ask(
    question: Annotated[str | None, typer.Argument(help="La question.")] = None,
    history: Annotated[Path | None, typer.Option("--history", help="JSON : liste de {role, content}.")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="extractive | generative")] = None,
    llm: Annotated[str | None, typer.Option("--llm", help="local | openai")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Sortie JSON (objet Answer).")] = False,
    batch: Annotated[Path | None, typer.Option("--batch", help="Fichier JSONL de cas.")] = None,
    export_format: Annotated[
        str | None, typer.Option("--format", help="Exporter la réponse : md | docx | pdf (défaut : selon --out).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Fichier d'export (md sans --out : sortie standard).")
    ] = None,
) -> None:
    """Poser une question : réponse sourcée, ou « le corpus ne le dit pas »."""
    if (question is None) == (batch is None):
        errors.print("Donnez soit une QUESTION, soit --batch FICHIER.jsonl.")
        raise typer.Exit(EXIT_USAGE)
    fmt = _export_format(export_format, out)
    if fmt is not None and (batch is not None or as_json):
        errors.print("--format/--out exportent une seule réponse : sans --batch ni --json.")
        raise typer.Exit(EXIT_USAGE)
    asked, backend = checked_mode(mode, llm)
    with user_errors():
        assistant = open_assistant()
        if batch is not None:
            for number, case in read_jsonl(batch):
                turns = history_turns(case.get("history"), f"{batch}:{number}")
                answer = assistant.ask(case["question"], turns, mode=asked, llm=backend)
                record = {"id": case.get("id", str(number)), **answer.model_dump(mode="json")}
                print(json.dumps(record, ensure_ascii=False), flush=True)
            return
        assert question is not None
        turns = _history_file(history) if history is not None else []
        if as_json:
            print(assistant.ask(question, turns, mode=asked, llm=backend).model_dump_json(indent=2))
            return
        if fmt is not None:
            data = assistant.export([assistant.ask(question, turns, mode=asked, llm=backend)], fmt)
            if out is None:
                sys.stdout.buffer.write(data)
                return
            write_file(out, data)
            errors.print(f"Réponse exportée : {shown(str(out))} ({len(data)} octets)", highlight=False)
            return
        _stream_to_console(assistant, question, turns, asked, backend)


def chat(
    mode: Annotated[str | None, typer.Option("--mode", help="extractive | generative")] = None,
    llm: Annotated[str | None, typer.Option("--llm", help="local | openai")] = None,
) -> None:
    """Conversation dans le terminal (Ctrl-D pour quitter)."""
    asked, backend = checked_mode(mode, llm)
    with user_errors():
        assistant = open_assistant()
        assistant.ensure_index()
        turns: list[Turn] = []
        console.print("Posez vos questions sur l'étude du RTES (Ctrl-D pour quitter).")
        while True:
            try:
                question = console.input("[bold]> [/bold]")
            except EOFError:
                console.print()
                return
            if not question.strip():
                continue
            try:
                answer = _stream_to_console(assistant, question, turns, asked, backend)
            except PtceError as exc:
                errors.print(f"[red]Erreur :[/red] {shown(str(exc))}", highlight=False)
                continue
            turns += [Turn(role="user", content=question), Turn(role="assistant", content=answer.answer)]


def _history_file(path: Path) -> list[Turn]:
    """The turns of a --history JSON file."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PtceError(f"{path}: historique illisible ({exc})") from None
    return history_turns(raw, str(path))


def _export_format(name: str | None, out: Path | None) -> ExportFormat | None:
    """The export format from --format, else from --out's suffix; None when neither is given."""
    if name is None and out is None:
        return None
    name = name or (out.suffix.lstrip(".").lower() if out is not None else "")
    if name not in FORMATS:
        errors.print("--format vaut md, docx ou pdf (ou donnez un --out en .md, .docx ou .pdf).")
        raise typer.Exit(EXIT_USAGE)
    if name != "md" and out is None:
        errors.print(f"--format {name} écrit un fichier binaire : donnez --out FICHIER.{name}.")
        raise typer.Exit(EXIT_USAGE)
    return name  # type: ignore[return-value]


def _print_answer(answer: Answer, stream_started: bool = False) -> None:
    if not stream_started:
        console.print(Markdown(answer.answer))
    if answer.notice:
        errors.print(answer.notice)
    for c in answer.citations:
        section = " > ".join(c.breadcrumb[1:])
        where = f"{c.title} — {section}" if section else c.title
        page = f", p. {c.page_label or c.page}" if c.page else ""
        console.print(f"  [{c.n}] {where}{page} (car. {c.start}-{c.end})", highlight=False, markup=False)
    if answer.abstained and answer.consulted:
        console.print("  Passages les plus proches :")
        for hit in answer.consulted:
            console.print(f"   · {hit.chunk.text[:120]}…", highlight=False, markup=False)


def _stream_to_console(
    assistant: Assistant, question: str, turns: list[Turn], mode: Mode | None, backend: Backend | None
) -> Answer:
    final: Answer | None = None
    streamed = False
    for event in assistant.stream(question, turns, mode=mode, llm=backend):
        if event.kind == "draft" and event.answer is not None:
            console.print("[dim]Réponse extractive (vérifiée) :[/dim]")
            _print_answer(event.answer)
            console.print("[dim]Réponse rédigée par le modèle :[/dim]")
        elif event.kind == "token":
            streamed = True
            console.print(event.text, end="", highlight=False, markup=False)
        elif event.answer is not None:
            final = event.answer
    assert final is not None
    if streamed:
        console.print("\n[dim]Après vérification :[/dim]")
    _print_answer(final)
    return final
