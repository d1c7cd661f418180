"""Generative ask with the local model: first token, tokens/s and total, ours vs the naive pipeline.

Ours streams `Assistant.stream(mode="generative", llm="local")`: the extractive answer, then the model's
tokens for a 1-2 sentence lead written over the answer's quotes only (since session 5), then the verified
answer. The naive pipeline
stuffs its top 4 whole 1000-character chunks into the same chain and model. Both run on the same few
standalone answerable dev questions, alternating; the model is loaded before timing starts.

    .venv/bin/python benchmarks/generative.py [--runs 1] [--questions 3]
"""

from __future__ import annotations

import time
from typing import Any

from harness import (
    Generation,
    NaiveRag,
    Recorder,
    Row,
    dev_cases,
    number,
    pair,
    parser,
    prepared_assistant,
    ratio,
    stats,
    times,
)

from ptce_assistant.assistant import Assistant
from ptce_assistant.evals.metrics import covers_any
from ptce_assistant.llm import llm_status


def ours(assistant: Assistant, question: str) -> tuple[Generation, dict[str, Any]]:
    """Stream one generative answer: timings of its tokens, and what the verifier kept."""
    started = time.perf_counter()
    first = last = draft = None
    tokens = 0
    final = None
    for event in assistant.stream(question, mode="generative", llm="local"):
        now = time.perf_counter() - started
        if event.kind == "draft":
            draft = now
        elif event.kind == "token":
            first = first if first is not None else now
            last = now
            tokens += 1
        else:
            final = event.answer
    assert final is not None
    outcome = {
        "draft_s": draft,
        "fallback": final.verification.fallback,
        "notice": final.notice,
        "quotes": [c.quote for c in final.citations],
    }
    return Generation(final.answer, first, last, time.perf_counter() - started, tokens), outcome


def main() -> None:
    """Alternate ours and the naive pipeline on a few questions."""
    cli = parser("Generative ask with the local LLM: the assistant vs the naive pipeline.", default_runs=1)
    cli.add_argument("--questions", type=int, default=3)
    args = cli.parse_args()
    recorder = Recorder.start("generative", args)
    assistant = prepared_assistant()
    status = llm_status(assistant.settings, "local")
    if not status.available:
        raise SystemExit(f"local LLM unavailable: {status.reason}")
    naive = NaiveRag(assistant.settings)
    cases = [c for c in dev_cases() if c.answerable and not c.history][: args.questions]
    assistant.prepare_generation("local")  # load and prime once, outside the timings (as the app does)
    assistant.ask(cases[0].question)  # warm retrieval
    mine: list[Generation] = []
    theirs: list[Generation] = []
    details: list[dict[str, Any]] = []
    for _ in range(args.runs):
        for case in cases:
            generation, outcome = ours(assistant, case.question)
            mine.append(generation)
            theirs.append(naive.answer(case.question))
            details.append(
                {
                    "id": case.id,
                    **outcome,
                    "evidence_cited": any(covers_any(q, case.expected_quotes) for q in outcome["quotes"]),
                    "ours": generation.text,
                    "naive": theirs[-1].text,
                }
            )
    naive.close()

    def summary(runs: list[Generation]) -> dict[str, Any]:
        return {
            "first_token_ms": stats([g.first_token * 1000 for g in runs if g.first_token is not None]),
            "total_ms": stats([g.total * 1000 for g in runs]),
            "tokens_per_s": stats([g.tokens_per_second for g in runs if g.tokens_per_second is not None]),
            "tokens": stats([g.tokens for g in runs]),
        }

    results: dict[str, Any] = {"ours": summary(mine), "naive": summary(theirs), "answers": details}
    a, b = results["ours"], results["naive"]
    results["naive_over_ours_p50"] = {
        "first_token": ratio(b["first_token_ms"]["p50"], a["first_token_ms"]["p50"]),
        "total": ratio(b["total_ms"]["p50"], a["total_ms"]["p50"]),
    }
    speed = results["naive_over_ours_p50"]
    recorder.finish(
        results,
        [
            Row(
                "generative first token p50 / p95 (ms)",
                pair(a["first_token_ms"]),
                pair(b["first_token_ms"]),
                times(speed["first_token"]),
            ),
            Row("generative total p50 / p95 (ms)", pair(a["total_ms"]), pair(b["total_ms"]), times(speed["total"])),
            Row(
                "generation tokens/s p50, tokens p50",
                f"{number(a['tokens_per_s']['p50'])}, {number(a['tokens']['p50'], '.0f')}",
                f"{number(b['tokens_per_s']['p50'])}, {number(b['tokens']['p50'], '.0f')}",
            ),
        ],
        runs=f"{args.runs}×{len(cases)}",
    )


if __name__ == "__main__":
    main()
