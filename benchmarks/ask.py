"""Extractive ask vs the naive pipeline with a local LLM: latency and evidence recall on the dev set.

Ours is `Assistant.ask(mode="extractive")` over every dev question (conversation turns included).
The naive pipeline retrieves its top 4 1000-character chunks and streams the local model's answer
through the project's generative chain (no gate, no verification); the model makes it slow, so it runs
on the first `--llm-questions` standalone answerable questions only.

Evidence recall (answerable dev cases, hit rule `covers`): ours counts the quotes the answer cites
(an abstention counts as a miss); the naive pipeline counts its 4 passages, the most its model could
use. The target of the issue: ours >= 10x faster, with better evidence recall.

    .venv/bin/python benchmarks/ask.py [--runs 3] [--llm-questions 3]
"""

from __future__ import annotations

from typing import Any

from harness import (
    NaiveRag,
    Recorder,
    Row,
    dev_cases,
    evidence_recall,
    iterate,
    ms,
    number,
    pair,
    parser,
    prepared_assistant,
    ratio,
    stats,
    timed,
    times,
)

from ptce_assistant.llm import get_chat_model

# Answer.timings_ms stages: thesaurus expansion, question embedding, dense search, BM25, fusion,
# sentence scoring, answerability gate, composition.
STAGES = ("expand", "embed", "dense", "bm25", "fusion", "sentences", "gate", "compose")


def main() -> None:
    """Time extractive answers on every dev question and naive LLM answers on a few."""
    cli = parser("Extractive ask vs the naive pipeline with the local LLM.", default_runs=3)
    cli.add_argument("--llm-questions", type=int, default=3, help="questions answered by the naive pipeline")
    args = cli.parse_args()
    recorder = Recorder.start("ask", args)
    assistant = prepared_assistant()
    cases = dev_cases()
    assistant.ask(cases[0].question)  # warm-up
    ours_ms: list[float] = []
    stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
    cited: list[list[str]] = []
    for run, case in iterate(cases, args.runs):
        assistant.embedder.clear_query_cache()  # every timed question is embedded, as a new one would be
        answer, elapsed = timed(assistant.ask, case.question, case.history, mode="extractive")
        ours_ms.append(elapsed)
        for stage in STAGES:
            if stage in answer.timings_ms:  # refusals stop before searching, abstentions before composing
                stages[stage].append(answer.timings_ms[stage])
        if run == 0:
            cited.append([c.quote for c in answer.citations])

    naive = NaiveRag(assistant.settings)
    context = [[p.text for p in naive.rank(c.question)] for c in cases]
    llm_cases = [c for c in cases if c.answerable and not c.history][: args.llm_questions]
    get_chat_model(assistant.settings, "local")  # the model load is a cold-start cost, not an answer's
    generations = [naive.answer(c.question) for c in llm_cases]
    naive.close()
    same_ours = []
    for case in llm_cases:
        assistant.embedder.clear_query_cache()
        same_ours.append(timed(assistant.ask, case.question, mode="extractive")[1])

    naive_total = stats([g.total * 1000 for g in generations])
    naive_first = stats([g.first_token * 1000 for g in generations if g.first_token is not None])
    ours = stats(ours_ms)
    results: dict[str, Any] = {
        "ours_extractive_ms": ours,
        "ours_extractive_ms_same_questions": stats(same_ours),
        "ours_stage_ms": {stage: stats(samples) for stage, samples in stages.items()},
        "naive_llm_total_ms": naive_total,
        "naive_llm_first_token_ms": naive_first,
        "naive_total_over_ours_p50": ratio(naive_total["p50"], ours["p50"]),
        "naive_first_token_over_ours_p50": ratio(naive_first["p50"], ours["p50"]),
        "evidence_recall": {
            "ours_cited": round(evidence_recall(cited, cases), 3),
            "naive_context_top4": round(evidence_recall(context, cases), 3),
        },
        "llm_questions": [c.id for c in llm_cases],
        "naive_answers": [g.text for g in generations],
        "cases": len(cases),
    }
    recall = results["evidence_recall"]
    recorder.finish(
        results,
        [
            Row(
                "answer p50 / p95 (ms): extractive vs naive+LLM complete",
                pair(ours),
                pair(naive_total),
                times(results["naive_total_over_ours_p50"]),
            ),
            Row(
                "answer p50 (ms): extractive vs naive+LLM first token",
                ms(ours["p50"]),
                ms(naive_first["p50"]),
                times(results["naive_first_token_over_ours_p50"]),
            ),
            Row(
                "extractive answer, p50 per stage (ms): " + ", ".join(STAGES),
                " / ".join(number(results["ours_stage_ms"][stage]["p50"], ".2f") for stage in STAGES),
            ),
            Row(
                "evidence recall: ours cited vs naive top-4 context",
                f"{recall['ours_cited']:.2f}",
                f"{recall['naive_context_top4']:.2f}",
            ),
        ],
        runs=f"{args.runs}×{len(cases)} / {len(generations)} LLM",
    )


if __name__ == "__main__":
    main()
