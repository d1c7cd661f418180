"""`ptce eval`: run the offline evaluation, compare two reports, calibrate, draft cases from feedback."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ptce_assistant.cli.auditing import audit_drafts
from ptce_assistant.cli.common import (
    EXIT_REJECTED,
    EXIT_USAGE,
    checked_mode,
    console,
    errors,
    open_assistant,
    progress_bar,
    user_errors,
)


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
    from ptce_assistant.evals.records import load_report
    from ptce_assistant.evals.regression import (
        DEFAULT_THRESHOLDS,
        check_thresholds,
        compare_reports,
        format_comparison,
        load_thresholds,
        unchecked_splits,
    )
    from ptce_assistant.evals.report import default_run_folder, metric_rows, write_reports
    from ptce_assistant.evals.runner import run_eval

    asked, backend = checked_mode(mode, llm)
    if sets[0] == Path("from-feedback"):
        audit_drafts(out=sets[1] if len(sets) > 1 else None)
        return
    with user_errors():
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
        assistant = open_assistant()
        assistant.ensure_index()
        with progress_bar() as progress:
            task = progress.add_task("évaluation", total=None)
            report = run_eval(
                assistant,
                sets,
                mode=asked,
                llm=backend,
                with_baselines=baselines,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        for path in write_reports(report, out or default_run_folder(report)):
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
    assistant = open_assistant()
    assistant.ensure_index()
    with progress_bar() as progress:
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
