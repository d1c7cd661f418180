"""`ptce`: the command line. It parses, calls the Assistant facade, prints."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, get_args

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ptce_assistant.answering.answer import Answer
from ptce_assistant.assistant import Assistant
from ptce_assistant.audit import EventAction
from ptce_assistant.config import Backend, Mode, get_settings
from ptce_assistant.conversation import Turn
from ptce_assistant.errors import PtceError
from ptce_assistant.exports import FORMATS, ExportFormat

app = typer.Typer(
    help="Assistant sourcé sur l'étude RTES 2014 « Les PTCE et le rôle des collectivités ».",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
errors = Console(stderr=True)

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


@contextmanager
def _user_errors() -> Iterator[None]:
    """Show the project's errors as one line, never a traceback."""
    try:
        yield
    except PtceError as exc:
        errors.print(f"[red]Erreur :[/red] {_shown(str(exc))}", highlight=False)
        raise typer.Exit(EXIT_REJECTED) from None
    except KeyboardInterrupt:
        errors.print("Interrompu : l'index précédent reste intact.")
        raise typer.Exit(130) from None


def _shown(text: str) -> str:
    """User-controlled text (file names, messages) printed as is: no Rich markup, no control characters."""
    return escape("".join(c if c.isprintable() else repr(c)[1:-1] for c in text))


def _progress() -> Progress:
    """The progress bar of long commands (on stderr, so JSON on stdout stays clean)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    )


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
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


def _history(raw: Any, where: str) -> list[Turn]:
    try:
        return [Turn.model_validate(t) for t in raw or []]
    except ValueError:
        raise PtceError(f"{where}: « history » doit être une liste de {{role: user|assistant, content}}") from None


@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="Fichiers ou dossiers (défaut : le corpus).")] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Reconstruire l'index de zéro.")] = False,
) -> None:
    """Indexer le corpus (incrémental : seuls les documents nouveaux ou modifiés sont ré-encodés)."""
    with _user_errors():
        assistant = Assistant()
        with _progress() as progress:
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
                _shown(outcome.path),
                f"[{colour}]{outcome.status}[/{colour}]",
                str(outcome.chunks),
                _shown(outcome.error or ""),
            )
        console.print(table)
        console.print(
            f"{report.chunks_embedded} passages encodés en {report.seconds:.1f} s "
            f"({report.chunks_per_second:.0f}/s) ; {report.chunks_total} passages dans l'index."
        )
        for outcome in report.rejected:
            errors.print(f"[red]rejeté[/red] {_shown(outcome.path)}: {_shown(outcome.error or '')}", highlight=False)
        changed = [o for o in report.outcomes if o.status in ("added", "updated", "removed")]
        _trace(
            "ingest",
            {
                "rebuild": rebuild,
                "changed": len(changed),
                "rejected": len(report.rejected),
                "chunks": report.chunks_total,
            },
        )
    if report.rejected:
        raise typer.Exit(EXIT_REJECTED)


@app.command()
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
    with _user_errors():
        assistant = Assistant()
        if batch is not None:
            for number, case in _read_jsonl(batch):
                history = _history(case.get("history"), f"{batch}:{number}")
                standalone, result = assistant.retrieve(case["question"], history, k=k)
                print(
                    json.dumps(
                        {
                            "id": case.get("id", str(number)),
                            "standalone_query": standalone.text,
                            "hits": [h.record() for h in result.hits],
                            "timings_ms": {n: round(v, 2) for n, v in result.timings_ms.items()},
                        },
                        ensure_ascii=False,
                    ),
                    flush=True,
                )
            return
        assert query is not None
        result = assistant.search(query, k=k)
        if as_json:
            print(
                json.dumps(
                    {"query": query, "hits": [h.record() for h in result.hits], "timings_ms": result.timings_ms},
                    ensure_ascii=False,
                    indent=2,
                )
            )
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


@app.command()
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
    if mode not in (None, *get_args(Mode)) or llm not in (None, *get_args(Backend)):
        errors.print("--mode vaut extractive ou generative ; --llm vaut local ou openai.")
        raise typer.Exit(EXIT_USAGE)
    backend: Backend | None = llm  # type: ignore[assignment]
    with _user_errors():
        assistant = Assistant()
        if batch is not None:
            for number, case in _read_jsonl(batch):
                turns = _history(case.get("history"), f"{batch}:{number}")
                answer = assistant.ask(case["question"], turns, mode=mode, llm=backend)  # type: ignore[arg-type]
                record = {"id": case.get("id", str(number)), **answer.model_dump(mode="json")}
                print(json.dumps(record, ensure_ascii=False), flush=True)
            return
        assert question is not None
        turns = []
        if history is not None:
            try:
                raw = json.loads(history.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise PtceError(f"{history}: historique illisible ({exc})") from None
            turns = _history(raw, str(history))
        if as_json:
            answer = assistant.ask(question, turns, mode=mode, llm=backend)  # type: ignore[arg-type]
            print(answer.model_dump_json(indent=2))
            return
        if fmt is not None:
            data = assistant.export([assistant.ask(question, turns, mode=mode, llm=backend)], fmt)  # type: ignore[arg-type]
            if out is None:
                sys.stdout.buffer.write(data)
                return
            _write_file(out, data)
            errors.print(f"Réponse exportée : {_shown(str(out))} ({len(data)} octets)", highlight=False)
            return
        _stream_to_console(assistant, question, turns, mode, backend)


def _write_file(path: Path, data: bytes) -> None:
    """Write `data` to `path`, or PtceError naming the file."""
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise PtceError(f"{path} : écriture impossible ({exc.strerror})") from None


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


def _stream_to_console(
    assistant: Assistant, question: str, turns: list[Turn], mode: str | None, backend: Backend | None
) -> Answer:
    final: Answer | None = None
    streamed = False
    for event in assistant.stream(question, turns, mode=mode, llm=backend):  # type: ignore[arg-type]
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


@app.command()
def chat(
    mode: Annotated[str | None, typer.Option("--mode", help="extractive | generative")] = None,
    llm: Annotated[str | None, typer.Option("--llm", help="local | openai")] = None,
) -> None:
    """Conversation dans le terminal (Ctrl-D pour quitter)."""
    with _user_errors():
        assistant = Assistant()
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
                answer = _stream_to_console(assistant, question, turns, mode, llm)  # type: ignore[arg-type]
            except PtceError as exc:
                errors.print(f"[red]Erreur :[/red] {_shown(str(exc))}", highlight=False)
                continue
            turns += [Turn(role="user", content=question), Turn(role="assistant", content=answer.answer)]


@app.command()
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


@app.command("eval")
def evaluate(
    sets: Annotated[
        list[Path],
        typer.Argument(
            help="Jeux JSONL (un split chacun) ; ou « compare A/report.json B/report.json » ; "
            "ou « from-feedback [FICHIER] » (cas à relire tirés des réponses mal notées) ; "
            "ou « calibrate JEUX… » (ajuster le filtre et le choix des phrases sur ces cas, écrit --out)",
            show_default=False,
        ),
    ],
    mode: Annotated[str | None, typer.Option("--mode", help="extractive | generative")] = None,
    llm: Annotated[str | None, typer.Option("--llm", help="local | openai")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Dossier des rapports (défaut : evals/runs/DATE) ; avec calibrate, le fichier écrit."
        ),
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="Code 1 si une métrique passe sous son seuil.")] = False,
    thresholds: Annotated[
        Path | None, typer.Option("--thresholds", help="Seuils (défaut : evals/thresholds.toml).")
    ] = None,
    baselines: Annotated[
        bool, typer.Option("--baselines/--no-baselines", help="Comparer à BM25, dense, LangChain naïf.")
    ] = True,
) -> None:
    """Évaluer l'assistant hors ligne (rapports JSON, Markdown, HTML) ; « eval compare A B » compare deux rapports."""
    from datetime import UTC, datetime
    from typing import cast

    from ptce_assistant.config import PROJECT_ROOT
    from ptce_assistant.evals.records import load_report
    from ptce_assistant.evals.regression import (
        DEFAULT_THRESHOLDS,
        check_thresholds,
        compare_reports,
        format_comparison,
        load_thresholds,
        unchecked_splits,
    )
    from ptce_assistant.evals.report import metric_rows, write_reports
    from ptce_assistant.evals.runner import run_eval

    if mode not in (None, *get_args(Mode)) or llm not in (None, *get_args(Backend)):
        errors.print("--mode vaut extractive ou generative ; --llm vaut local ou openai.")
        raise typer.Exit(EXIT_USAGE)
    if sets[0] == Path("from-feedback"):
        audit_drafts(out=sets[1] if len(sets) > 1 else None)
        return
    with _user_errors():
        if sets[0] == Path("calibrate"):
            _calibrate(sets[1:], out or Path("calibration.json"))
            return
        if sets[0] == Path("compare"):
            if len(sets) != 3:
                errors.print("Usage : ptce eval compare A/report.json B/report.json")
                raise typer.Exit(EXIT_USAGE)
            print(format_comparison(compare_reports(load_report(sets[1]), load_report(sets[2]))))
            return
        limits = load_thresholds(thresholds or DEFAULT_THRESHOLDS) if check else {}
        assistant = Assistant()
        assistant.ensure_index()
        with _progress() as progress:
            task = progress.add_task("évaluation", total=None)
            report = run_eval(
                assistant,
                sets,
                mode=cast("Mode | None", mode),  # checked above
                llm=cast("Backend | None", llm),
                with_baselines=baselines,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        folder = out or PROJECT_ROOT / "evals" / "runs" / f"{stamp}-{report.run.mode}"
        for path in write_reports(report, folder):
            console.print(f"écrit : {path}", highlight=False)
        for split in report.splits:
            table = Table("métrique", *report.systems, title=f"{split} ({report.splits[split].n_cases} cas)")
            for label, cells in metric_rows(report, split):
                table.add_row(label, *cells)
            console.print(table)
        if not check:
            return
        unchecked = unchecked_splits(report, limits)
        for split in unchecked:
            errors.print(f"pas de seuil pour {report.run.mode}/{split} : non vérifié", highlight=False)
        shortfalls = check_thresholds(report, limits)
        for shortfall in shortfalls:
            errors.print(f"[red]sous le seuil[/red] {shortfall}", highlight=False)
    if shortfalls:
        raise typer.Exit(EXIT_REJECTED)
    if len(unchecked) < len(report.splits):
        console.print("Seuils respectés.")


def _calibrate(case_files: list[Path], out: Path) -> None:
    """Fit the gate and the sentence selector on `case_files` and write the calibration to `out`."""
    from ptce_assistant.evals.calibrate import calibrate

    if not case_files:
        errors.print("Usage : ptce eval calibrate JEU.jsonl [JEU.jsonl…] [--out FICHIER]")
        raise typer.Exit(EXIT_USAGE)
    assistant = Assistant()
    assistant.ensure_index()
    with _progress() as progress:
        task = progress.add_task("calibration", total=None)
        calibration = calibrate(
            assistant, case_files, progress=lambda done, total: progress.update(task, completed=done, total=total)
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(calibration.model_dump_json(indent=2) + "\n", encoding="utf-8")
    for name, key, model in (("filtre", "gate", calibration.gate), ("phrases", "sentence", calibration.sentence)):
        cv = model.cross_validation
        scores = ", ".join(f"{k} {v:.3f}" for k, v in cv.items() if k != "folds") or "trop peu de cas"
        count = calibration.provenance.examples.get(key, 0)
        console.print(f"{name} : {count} exemples ; validation croisée : {scores}")
    console.print(f"écrit : {out} (à utiliser avec PTCE_CALIBRATION_FILE={out})", highlight=False)


@app.command("app")
def run_app(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port HTTP.")] = 8501,
    host: Annotated[
        str, typer.Option("--host", help="Adresse d'écoute (127.0.0.1 : cette machine seule).")
    ] = "127.0.0.1",
    secrets: Annotated[
        Path | None,
        typer.Option(
            "--secrets",
            help="Fichier secrets.toml (section [auth] : connexion OpenID Connect). "
            "Défaut : .streamlit/secrets.toml du dossier courant.",
        ),
    ] = None,
) -> None:
    """Lancer l'application web Streamlit (chat, leviers, documents)."""
    import os

    from ptce_assistant.access import MIN_ADMIN_TOKEN_CHARS, admin_token_usable
    from ptce_assistant.config import PROJECT_ROOT

    script = PROJECT_ROOT / "app" / "streamlit_app.py"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.headless",
        "true",
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.maxUploadSize",
        str(get_settings().max_upload_mb),
        "--browser.gatherUsageStats",
        "false",
        "--client.showErrorDetails",
        "none",
        # The élus see no « Deploy » button nor developer menu (set here: it holds from the first page on).
        "--client.toolbarMode",
        "viewer",
        # The palette checked for contrast (docs/accessibility.md); the dark theme is not checked yet.
        "--theme.base",
        "light",
    ]
    if secrets is not None:
        if not secrets.is_file():
            errors.print(f"{_shown(str(secrets))} : fichier de secrets introuvable.", highlight=False)
            raise typer.Exit(EXIT_USAGE)
        command += ["--secrets.files", str(secrets.resolve())]
    if get_settings().admin_token is not None and not admin_token_usable(get_settings()):
        errors.print(
            f"[yellow]PTCE_ADMIN_TOKEN ignoré :[/yellow] {MIN_ADMIN_TOKEN_CHARS} caractères au moins "
            '(python -c "import secrets; print(secrets.token_urlsafe(32))").',
            highlight=False,
        )
    console.print(f"Application : http://{host}:{port}  (Ctrl-C pour arrêter)", highlight=False)
    sys.stdout.flush()
    # Replaced by Streamlit (no child process): signals reach the server and nothing is left orphaned.
    os.execv(sys.executable, command)


@app.command("serve-llm")
def serve_llm(
    host: Annotated[
        str | None, typer.Option("--host", help="Adresse d'écoute (défaut : celle de PTCE_OPENAI_BASE_URL).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="Port (défaut : celui de PTCE_OPENAI_BASE_URL, sinon 8080)."),
    ] = None,
) -> None:
    """Servir le modèle local en API OpenAI : plusieurs instances de l'application partagent un modèle chargé."""
    import os

    from ptce_assistant.llm_server import SERVED_MODEL, listen_address, server_command, server_environment

    settings = get_settings()
    default_host, default_port = listen_address(settings)
    host, port = host or default_host, port or default_port
    with _user_errors():
        command = server_command(settings, host, port)
    key = "avec la clé PTCE_OPENAI_API_KEY" if settings.openai_api_key else "sans clé (PTCE_OPENAI_API_KEY vide)"
    console.print(
        f"Modèle « {SERVED_MODEL} » servi sur http://{host}:{port}/v1 {key} (Ctrl-C pour arrêter)", highlight=False
    )
    console.print(
        f"Application : PTCE_LLM=openai PTCE_OPENAI_BASE_URL=http://{host}:{port}/v1 PTCE_OPENAI_MODEL={SERVED_MODEL}",
        highlight=False,
    )
    sys.stdout.flush()
    # Replaced by the server (no child process): signals reach it and nothing is left orphaned.
    os.execve(command[0], command, server_environment(settings))


audit_app = typer.Typer(help="Journal d'audit des questions et des avis (SQLite).", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def _trace(action: EventAction, detail: dict[str, Any]) -> None:
    """Record a command's action under the OS user; an unavailable log is reported, not fatal."""
    from ptce_assistant.access import os_person
    from ptce_assistant.audit import open_audit_log

    try:
        open_audit_log(get_settings()).log_event(os_person().subject, action, detail)
    except PtceError as exc:
        errors.print(f"[yellow]Journal d'audit :[/yellow] {_shown(str(exc))}", highlight=False)


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
    with _user_errors():
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
    with _user_errors():
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

    with _user_errors():
        lines = [case.model_dump_json() for case in cases_from_feedback(open_audit_log(get_settings()))]
        text = "".join(line + "\n" for line in lines)
        if out is None:
            sys.stdout.write(text)
        else:
            _write_file(out, text.encode("utf-8"))
        errors.print(f"{len(lines)} cas à relire.")


def main() -> None:
    """Entry point for `python -m ptce_assistant`."""
    app()


if __name__ == "__main__":
    main()
