"""Run eval sets through the Assistant facade (and the baselines) and build the report."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ptce_assistant.answering.citations import citation_is_valid
from ptce_assistant.assistant import Assistant
from ptce_assistant.config import PROJECT_ROOT, Backend, Mode, Settings
from ptce_assistant.errors import PtceError
from ptce_assistant.evals.baselines import Baseline, build_baselines
from ptce_assistant.evals.dataset import EvalCase, load_cases
from ptce_assistant.evals.metrics import (
    HEADLINE_METRICS,
    MRR_DEPTH,
    RETRIEVAL_METRICS,
    Scores,
    answer_scores,
    covers_any,
    dangling_markers,
    is_verbatim_answer,
    latency,
    passed,
    retrieval_scores,
    sentence_scores,
)
from ptce_assistant.evals.metrics import aggregate as aggregate_scores
from ptce_assistant.evals.records import (
    ASSISTANT,
    SPLIT_ROLES,
    UNDECLARED_ROLE,
    BaselineOutcome,
    CaseRecord,
    EvalReport,
    HitRecord,
    PassageRecord,
    RunInfo,
    SplitSummary,
    SystemMetrics,
)

CaseProgress = Callable[[int, int], None]
# The assistant with PTCE_THESAURUS=0, on validation and test splits only (the dev split built the thesaurus).
NO_THESAURUS = "no-thesaurus"
NO_THESAURUS_METRICS = ("hit@3", "evidence_hit")
NO_THESAURUS_DESCRIPTION = (
    "The assistant with the thesaurus off (PTCE_THESAURUS=0), on validation and test splits only: "
    "hit@3 and evidence_hit, to measure what the thesaurus built on dev brings to unseen questions."
)
_SECRET_WORDS = ("key", "token", "secret", "password")


def evaluate_case(
    assistant: Assistant,
    split: str,
    case: EvalCase,
    mode: Mode | None,
    llm: Backend | None,
    baselines: Sequence[Baseline] = (),
    thesaurus_off: Assistant | None = None,
) -> CaseRecord:
    """One case through the facade: its top-10 passages, its answer and every score.

    With `thesaurus_off`, the same case also goes through that assistant (its outcome as a baseline).
    """
    quotes = case.expected_quotes
    # Asked first: its timings then include embedding the question, which the retrieval below re-reads cached.
    answer = assistant.ask(case.question, case.history, mode=mode, llm=llm)
    _, result = assistant.retrieve(case.question, case.history, k=MRR_DEPTH)
    scores: Scores = dict.fromkeys(RETRIEVAL_METRICS)
    if case.answerable:
        scores = retrieval_scores([h.chunk.text for h in result.hits], quotes)
    scores.update(answer_scores(case, answer, assistant.index))
    scores.update(sentence_scores(answer, result.hits[0].chunk if result.hits else None, quotes))
    return CaseRecord(
        split=split,
        id=case.id,
        question=case.question,
        history=case.history,
        answerable=case.answerable,
        lang=case.lang,
        tags=case.tags,
        expected_quotes=quotes,
        hits=[
            HitRecord(
                chunk_id=h.chunk.chunk_id,
                rank=h.rank,
                dense_rank=h.dense_rank,
                lexical_rank=h.lexical_rank,
                covers_expected=covers_any(h.chunk.text, quotes),
            )
            for h in result.hits
        ],
        answer=answer.model_copy(
            update={"consulted": [], "timings_ms": {stage: round(ms, 2) for stage, ms in answer.timings_ms.items()}}
        ),
        invalid_citations=[c.n for c in answer.citations if not citation_is_valid(c, assistant.index)],
        dangling_markers=dangling_markers(answer),
        verbatim_by_construction=not answer.abstained and is_verbatim_answer(answer),
        scores=scores,
        passed={m: passed(m, v) for m, v in scores.items()},
        baselines=(
            {b.name: _baseline_outcome(b, case) for b in baselines}
            | ({NO_THESAURUS: _without_thesaurus(thesaurus_off, case, mode, llm)} if thesaurus_off else {})
            if case.answerable
            else {}
        ),
    )


def _without_thesaurus(assistant: Assistant, case: EvalCase, mode: Mode | None, llm: Backend | None) -> BaselineOutcome:
    answer = assistant.ask(case.question, case.history, mode=mode, llm=llm)
    _, result = assistant.retrieve(case.question, case.history, k=MRR_DEPTH)
    texts = [h.chunk.text for h in result.hits]
    found = retrieval_scores(texts, case.expected_quotes) | answer_scores(case, answer, assistant.index)
    scores: Scores = {m: found[m] for m in NO_THESAURUS_METRICS}
    return BaselineOutcome(
        passages=[
            PassageRecord(passage_id=h.chunk.chunk_id, rank=h.rank, covers_expected=covers_any(t, case.expected_quotes))
            for h, t in zip(result.hits, texts, strict=True)
        ],
        scores=scores,
        passed={m: passed(m, v) for m, v in scores.items()},
    )


def is_unseen(split: str) -> bool:
    """A validation or test split: not the dev split the word lists and models were tuned on."""
    return SPLIT_ROLES.get(split, UNDECLARED_ROLE).startswith(("validation", "test"))


def _baseline_outcome(baseline: Baseline, case: EvalCase) -> BaselineOutcome:
    ranked = baseline.rank(case.question)
    scores = retrieval_scores([p.text for p in ranked], case.expected_quotes)
    return BaselineOutcome(
        passages=[
            PassageRecord(passage_id=p.passage_id, rank=rank, covers_expected=covers_any(p.text, case.expected_quotes))
            for rank, p in enumerate(ranked, start=1)
        ],
        scores=scores,
        passed={m: passed(m, v) for m, v in scores.items()},
    )


def summarize_systems(cases: Sequence[CaseRecord], baselines: Sequence[str]) -> dict[str, SystemMetrics]:
    """Headline metrics of the assistant and retrieval metrics of each baseline over some cases."""
    systems = {ASSISTANT: aggregate_scores((c.scores for c in cases), HEADLINE_METRICS)}
    for name in baselines:
        metrics = NO_THESAURUS_METRICS if name == NO_THESAURUS else RETRIEVAL_METRICS
        systems[name] = aggregate_scores((c.baselines[name].scores for c in cases if name in c.baselines), metrics)
    return systems


def summarize_split(name: str, path: Path, cases: Sequence[CaseRecord], baselines: Sequence[str]) -> SplitSummary:
    """A split's metrics overall, per tag (plus the computed 'standalone' group) and its latency."""
    groups = sorted({g for c in cases for g in c.groups})
    return SplitSummary(
        name=name,
        path=shown_path(path),
        role=SPLIT_ROLES.get(name, UNDECLARED_ROLE),
        n_cases=len(cases),
        n_answerable=sum(c.answerable for c in cases),
        metrics=summarize_systems(cases, baselines),
        by_tag={g: summarize_systems([c for c in cases if g in c.groups], baselines) for g in groups},
        latency_ms=latency(c.answer.timings_ms for c in cases),
        verbatim_by_construction=sum(c.verbatim_by_construction for c in cases),
    )


def run_eval(
    assistant: Assistant,
    set_paths: Sequence[Path],
    mode: Mode | None = None,
    llm: Backend | None = None,
    with_baselines: bool = True,
    progress: CaseProgress | None = None,
) -> EvalReport:
    """Every case of every set through the assistant (and the baselines); one split per set."""
    started = time.perf_counter()
    splits: dict[str, tuple[Path, list[EvalCase]]] = {}
    for path in set_paths:
        if path.stem in splits:
            raise PtceError(f"{path}: deux jeux portent le nom « {path.stem} » ; renommez l'un des deux")
        splits[path.stem] = (path, load_cases(path))
    baselines = build_baselines(assistant) if with_baselines else []
    unseen = with_baselines and assistant.settings.thesaurus and any(is_unseen(split) for split in splits)
    thesaurus_off = assistant.with_settings(thesaurus=False) if unseen else None
    total = sum(len(cases) for _, cases in splits.values())
    records: list[CaseRecord] = []
    try:
        for split, (_, cases) in splits.items():
            for case in cases:
                off = thesaurus_off if is_unseen(split) else None
                records.append(evaluate_case(assistant, split, case, mode, llm, baselines, off))
                if progress:
                    progress(len(records), total)
    finally:
        for baseline in baselines:
            close = getattr(baseline, "close", None)
            if close:
                close()
    names = [b.name for b in baselines] + ([NO_THESAURUS] if thesaurus_off else [])
    summaries = {
        split: summarize_split(split, path, [r for r in records if r.split == split], names)
        for split, (path, _) in splits.items()
    }
    return EvalReport(
        run=run_info(
            assistant,
            mode or assistant.settings.mode,
            llm or assistant.settings.llm,
            baselines,
            time.perf_counter() - started,
            thesaurus_off=thesaurus_off is not None,
        ),
        splits=summaries,
        cases=records,
    )


# Run information -------------------------------------------------------------------------------
def git_commit() -> str | None:
    """The checked-out commit, or None outside a git work tree."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def machine() -> dict[str, Any]:
    """What the timings were measured on."""
    return {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def shown_path(path: Path) -> str:
    """Paths inside the project are shown relative to it, those in the home folder from ~ (reports are committed)."""
    resolved = path.resolve()
    for root, prefix in ((PROJECT_ROOT, ""), (Path.home(), "~/")):
        if resolved.is_relative_to(root):
            return prefix + str(resolved.relative_to(root))
    return str(path)


def _is_secret(name: str) -> bool:
    return any(word in _SECRET_WORDS for word in name.split("_"))


def settings_dump(settings: Settings) -> dict[str, Any]:
    """The settings without secrets (api keys, tokens), project paths made relative."""
    dump = settings.model_dump(mode="json", exclude={name for name in Settings.model_fields if _is_secret(name)})
    return {
        name: shown_path(Path(value)) if isinstance(getattr(settings, name), Path) else value
        for name, value in dump.items()
    }


def run_info(
    assistant: Assistant,
    mode: str,
    llm: str,
    baselines: Sequence[Baseline],
    seconds: float,
    thesaurus_off: bool = False,
) -> RunInfo:
    """Date, commit, corpus hash, machine and configuration of a run."""
    index = assistant.index
    return RunInfo(
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        git_commit=git_commit(),
        corpus_hash=index.manifest.corpus_hash,
        index_generation=index.generation,
        chunks=len(index.chunks),
        embedder=index.manifest.embedder,
        mode=mode,
        llm=llm if mode == "generative" else "none",
        machine=machine(),
        settings=settings_dump(assistant.settings),
        baselines={b.name: b.description for b in baselines}
        | ({NO_THESAURUS: NO_THESAURUS_DESCRIPTION} if thesaurus_off else {}),
        seconds=round(seconds, 1),
    )
