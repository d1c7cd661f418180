"""The eval runner on a 4-case set: reports written, schema, regression gate and comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ptce_assistant import cli
from ptce_assistant.answering.answer import Answer
from ptce_assistant.assistant import Assistant
from ptce_assistant.cli import evaluating
from ptce_assistant.evals.records import EvalReport, load_report
from ptce_assistant.evals.regression import check_thresholds, compare_reports, load_thresholds
from ptce_assistant.evals.report import write_reports
from ptce_assistant.evals.runner import run_eval

HISTORY = [
    {"role": "user", "content": "Quels sont les leviers identifiés par l'étude pour développer les PTCE ?"},
    {"role": "assistant", "content": "L'étude identifie huit leviers, de la pédagogie sur l'ESS à l'accompagnement."},
]
MINI_SET = [
    {
        "id": "m-standalone",
        "question": "Qui a publié l'étude sur le rôle des collectivités dans les PTCE, et quand ?",
        "answerable": True,
        "lang": "fr",
        "tags": ["section:intro"],
        "expected_quotes": ["a publié en mars 2014 une étude sur les rôles des collectivités locales"],
    },
    {
        "id": "m-followup",
        "question": "Et le septième ?",
        "history": HISTORY,
        "answerable": True,
        "lang": "fr",
        "tags": ["section:leviers", "followup"],
        "expected_quotes": [
            "Soutenir l'emploi et les fonctions de coordination et de recherche et développement "
            "des projets de coopération dans le long terme."
        ],
    },
    {
        "id": "m-english",
        "question": "Which lever is about explaining the social and solidarity economy to the public?",
        "answerable": True,
        "lang": "en",
        "tags": ["section:leviers", "en"],
        "expected_quotes": [
            "Faire oeuvre de pédagogie sur l'ESS, présenter et diffuser ses valeurs, ses atouts, et ses réalisations."
        ],
    },
    {
        "id": "m-offtopic",
        "question": "Quelle est la capitale de l'Australie ?",
        "answerable": False,
        "lang": "fr",
        "tags": ["out-of-corpus", "off-topic"],
    },
]


@pytest.fixture(scope="module")
def mini_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sets") / "mini.jsonl"
    path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in MINI_SET), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def report_dir(assistant: Assistant, mini_set: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    write_reports(run_eval(assistant, [mini_set], mode="extractive"), folder)
    return folder


def test_reports_are_written(report_dir: Path) -> None:
    for name in ("report.json", "report.md", "report.html", "plots/latency.png", "plots/tags-mini.png"):
        assert (report_dir / name).stat().st_size > 0, name
    html = (report_dir / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 4
    markdown = (report_dir / "report.md").read_text(encoding="utf-8")
    assert "| metric | assistant | bm25 | dense | naive |" in markdown
    assert "## Reliability of the gate (all splits)" in markdown and (report_dir / "plots/reliability.png").exists()


def test_report_schema(report_dir: Path) -> None:
    raw = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    assert {"schema_version", "run", "splits", "cases"} <= raw.keys()
    assert {"date", "git_commit", "corpus_hash", "machine", "settings", "mode", "baselines"} <= raw["run"].keys()
    assert {"nproc", "platform"} <= raw["run"]["machine"].keys()
    assert not {"openai_api_key", "chroma_token"} & raw["run"]["settings"].keys()
    split = raw["splits"]["mini"]
    assert split["n_cases"] == 4 and split["n_answerable"] == 3
    assert set(split["metrics"]) == {"assistant", "bm25", "dense", "naive"}
    assert {
        "hit@1",
        "hit@3",
        "hit@5",
        "mrr@10",
        "evidence@400",
        "evidence@800",
        "evidence@1600",
        "citation_validity",
        "evidence_hit",
        "citation_precision",
        "right_sentence",
        "right_sentence_word_overlap",
        "abstention_accuracy",
        "false_abstention_rate",
        "supported_sentence_rate",
        "language_match",
    } <= split["metrics"]["assistant"].keys()
    assert split["metrics"]["assistant"]["hit@1"]["n"] == 3  # retrieval on answerable cases only
    assert {"followup", "standalone", "en"} <= split["by_tag"].keys()
    assert {"retrieve", "total"} <= split["latency_ms"].keys()
    case = next(c for c in raw["cases"] if c["id"] == "m-followup")
    assert {"hits", "answer", "passed", "scores", "baselines"} <= case.keys()
    # Every field of the Answer reaches the report; its consulted passages are the ranked `hits` instead.
    assert case["answer"].keys() == Answer.model_fields.keys() and case["answer"]["consulted"] == []
    assert 0 < len(case["hits"]) <= 10
    assert {"chunk_id", "rank", "dense_rank", "lexical_rank", "covers_expected"} <= case["hits"][0].keys()
    offtopic = next(c for c in raw["cases"] if c["id"] == "m-offtopic")
    assert offtopic["answer"]["abstained"] and offtopic["passed"]["abstention_accuracy"] is True
    assert offtopic["passed"]["hit@1"] is None and offtopic["baselines"] == {}


def test_check_exit_codes(
    assistant: Assistant, mini_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evaluating, "open_assistant", lambda: assistant)
    above = tmp_path / "above.toml"
    above.write_text('[extractive.mini.min]\n"hit@5" = 1.01\nlanguage_match = 0.5\n', encoding="utf-8")
    below = tmp_path / "below.toml"
    below.write_text(
        "[extractive.mini.min]\nlanguage_match = 0.5\n[extractive.mini.max]\nfalse_abstention_rate = 1.0\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    args = ["eval", str(mini_set), "--mode", "extractive", "--no-baselines", "--check", "--out"]
    failed = runner.invoke(cli.app, [*args, str(tmp_path / "a"), "--thresholds", str(above)])
    assert failed.exit_code == 1, failed.output
    shortfalls = [line for line in failed.output.splitlines() if "sous le seuil" in line]
    assert len(shortfalls) == 1 and "hit@5" in shortfalls[0]
    ok = runner.invoke(cli.app, [*args, str(tmp_path / "b"), "--thresholds", str(below)])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "b" / "report.json").exists()


def test_thresholds_apply_to_the_report_mode_and_split(report_dir: Path, tmp_path: Path) -> None:
    report = load_report(report_dir / "report.json")
    path = tmp_path / "t.toml"
    path.write_text(
        '[extractive.mini.min]\nunknown_metric = 0.1\n[generative.mini.min]\n"hit@5" = 2.0\n', encoding="utf-8"
    )
    shortfalls = check_thresholds(report, load_thresholds(path))
    assert [(s.metric, s.measured) for s in shortfalls] == [("unknown_metric", None)]


def flipped(report: EvalReport, case_id: str, metric: str) -> EvalReport:
    """The same report with one case's result on one metric reversed."""
    cases = [
        c.model_copy(update={"passed": {**c.passed, metric: not c.passed[metric]}}) if c.id == case_id else c
        for c in report.cases
    ]
    return report.model_copy(update={"cases": cases})


def test_compare_lists_flipped_cases(report_dir: Path, tmp_path: Path) -> None:
    before = load_report(report_dir / "report.json")
    was = before.cases[0].passed["decision_accuracy"]
    after = flipped(before, before.cases[0].id, "decision_accuracy")
    comparison = compare_reports(before, after)
    assert [(f.case_id, f.metric, f.direction) for f in comparison.flips] == [
        (before.cases[0].id, "decision_accuracy", "pass→fail" if was else "fail→pass")
    ]
    assert all(d.delta == 0 for d in comparison.deltas if d.delta is not None)

    (tmp_path / "after.json").write_text(after.model_dump_json(), encoding="utf-8")
    result = CliRunner().invoke(
        cli.app, ["eval", "compare", str(report_dir / "report.json"), str(tmp_path / "after.json")]
    )
    assert result.exit_code == 0, result.output
    assert f"mini/{before.cases[0].id}: decision_accuracy" in result.output
    assert CliRunner().invoke(cli.app, ["eval", "compare", str(tmp_path / "after.json")]).exit_code == 2


def test_the_reliability_table_bins_cases_by_the_gate_confidence(report_dir: Path) -> None:
    from ptce_assistant.evals.plots import reliability_rows

    report = load_report(report_dir / "report.json")
    rows = reliability_rows(report)
    assert [r[0] for r in rows] == ["0.0-0.2", "0.2-0.4", "0.4-0.6", "0.6-0.8", "0.8-1.0"]
    assert sum(int(r[1]) for r in rows) == 4
    low = rows[0]  # the off-topic question: little confidence, and indeed not answerable
    assert low[1] == "1" and low[3] == "0.00"


def test_validation_splits_get_the_thesaurus_off_column_and_dev_does_not(assistant: Assistant, tmp_path: Path) -> None:
    """`ptce eval` measures the thesaurus on unseen splits only: hit@3 and evidence_hit without it."""
    paths = []
    for name in ("dev", "heldout-blind-2"):
        (tmp_path / name).mkdir()
        paths.append(tmp_path / name / f"{name}.jsonl")
        paths[-1].write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in MINI_SET), encoding="utf-8")
    report = run_eval(assistant, paths, mode="extractive")
    assert "no-thesaurus" in report.run.baselines and "no-thesaurus" in report.systems
    blind = report.splits["heldout-blind-2"].metrics["no-thesaurus"]
    assert set(blind) == {"hit@3", "evidence_hit"} and blind["hit@3"].n == 3 and blind["evidence_hit"].n == 3
    assert report.splits["dev"].metrics["no-thesaurus"]["hit@3"].n == 0
    for case in report.cases:
        outcome = case.baselines.get("no-thesaurus")
        if case.split == "dev" or not case.answerable:
            assert outcome is None
        else:
            assert outcome is not None and set(outcome.scores) == {"hit@3", "evidence_hit"} and outcome.passages
