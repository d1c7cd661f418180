"""Warm search: the facade's retrieval vs the naive pipeline's similarity search, over the dev questions.

Ours is `Assistant.retrieve` (standalone query from the history, thesaurus expansion, dense e5 +
French BM25 fused by RRF); the naive one is `NaiveLangChainBaseline.rank` (the question as typed,
Chroma cosine top 4, the question embedded by sentence-transformers on torch as the tutorial does).
Both return 4 passages here, scored for evidence recall with `covers`. A third column times ours with
PTCE_QUERY_RUNTIME=torch (the question embedded by the same torch model as the naive pipeline's), to
separate the ONNX Runtime embedding from the rest of the path.

    .venv/bin/python benchmarks/search.py [--runs 3]
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
    pair,
    parser,
    prepared_assistant,
    ratio,
    stats,
    timed,
    times,
)

from ptce_assistant.assistant import Assistant
from ptce_assistant.evals.baselines import NAIVE_TOP_K


def main() -> None:
    """Time both searches on every dev question, `--runs` times, alternating."""
    args = parser("Warm search latency and evidence recall: the assistant vs the naive pipeline.", 3).parse_args()
    recorder = Recorder.start("search", args)
    assistant = prepared_assistant()
    naive = NaiveRag(assistant.settings)
    on_torch = Assistant(assistant.settings.model_copy(update={"query_runtime": "torch"}))
    cases = dev_cases()
    assistant.retrieve(cases[0].question, k=NAIVE_TOP_K)  # warm-up: models, index, caches
    on_torch.retrieve(cases[0].question, k=NAIVE_TOP_K)
    naive.rank(cases[0].question)
    ours_ms: list[float] = []
    torch_ms: list[float] = []
    naive_ms: list[float] = []
    ours_texts: list[list[str]] = []
    naive_texts: list[list[str]] = []
    for run, case in iterate(cases, args.runs):
        assistant.embedder.clear_query_cache()  # the naive pipeline has no cache: compare new questions
        (_, result), elapsed = timed(assistant.retrieve, case.question, case.history, k=NAIVE_TOP_K)
        ours_ms.append(elapsed)
        on_torch.embedder.clear_query_cache()
        torch_ms.append(timed(on_torch.retrieve, case.question, case.history, k=NAIVE_TOP_K)[1])
        passages, elapsed = timed(naive.rank, case.question)
        naive_ms.append(elapsed)
        if run == 0:
            ours_texts.append([h.chunk.text for h in result.hits])
            naive_texts.append([p.text for p in passages])
    naive.close()
    results: dict[str, Any] = {
        "ours_ms": stats(ours_ms),
        "naive_ms": stats(naive_ms),
        "ours_torch_ms": stats(torch_ms),
        "naive_over_ours_p50": ratio(stats(naive_ms)["p50"], stats(ours_ms)["p50"]),
        "evidence_recall_top4": {
            "ours": round(evidence_recall(ours_texts, cases), 3),
            "naive": round(evidence_recall(naive_texts, cases), 3),
        },
        "cases": len(cases),
        "answerable": sum(c.answerable for c in cases),
        "chunks": {"ours": len(assistant.index.chunks), "naive": naive.baseline.chunk_count},
    }
    recall = results["evidence_recall_top4"]
    recorder.finish(
        results,
        [
            Row(
                "warm search p50 / p95 (ms)",
                pair(results["ours_ms"]),
                pair(results["naive_ms"]),
                times(results["naive_over_ours_p50"]),
            ),
            Row(
                "warm search p50 / p95 (ms), ours with PTCE_QUERY_RUNTIME=torch",
                pair(results["ours_torch_ms"]),
                pair(results["naive_ms"]),
                times(ratio(results["naive_ms"]["p50"], results["ours_torch_ms"]["p50"])),
            ),
            Row("evidence recall, top 4 passages", f"{recall['ours']:.2f}", f"{recall['naive']:.2f}"),
        ],
        runs=f"{args.runs}×{len(cases)}",
    )


if __name__ == "__main__":
    main()
