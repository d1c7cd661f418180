"""Large-corpus run: ingestion, index size, search latency and answer quality at 1k, 10k, 100k chunks.

Each size runs in a fresh process (its peak memory is its own) over a seeded synthetic French corpus
with the study embedded in it (benchmarks/synthetic.py), indexed from scratch under benchmarks/work/.
First a probe embeds a sample with 1 process x 1 torch thread, 1 x 2 and 2 processes x 1 and the
fastest is used for ingestion. A size whose projected ingestion time (from the previous size's rate)
exceeds --max-minutes is not run: its projection is recorded instead.

    .venv/bin/python benchmarks/scale.py --chunks 1000,10000,100000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import (
    Recorder,
    Row,
    bench_settings,
    child_report,
    dev_cases,
    ms,
    pair,
    parser,
    run_child,
    stats,
    timed,
)
from synthetic import STUDY, ensure_corpus

from ptce_assistant.assistant import Assistant
from ptce_assistant.embeddings import EmbeddingPool, encode_batches
from ptce_assistant.evals.dataset import EvalCase
from ptce_assistant.evals.metrics import covers_any, first_covering_rank

SCRIPT = Path(__file__).resolve()
PROBE_SAMPLE = 256
EMBEDDING_CONFIGS = {"1x1": (1, 1), "1x2": (1, 2), "2x1": (2, 1)}  # processes x torch threads
RANKS = (1, 3, 5)
DEEP = 200  # candidates per retriever in the diagnostic search: where the study's passage sits when it is missed


# Embedding configurations ------------------------------------------------------------------------
def embedding_settings(config: str) -> dict[str, Any]:
    """Settings for a configuration: the product's own pool of worker processes, or torch threads in-process."""
    processes, threads = EMBEDDING_CONFIGS[config]
    return {"ingest_workers": processes, "torch_threads": threads, "ingest_pool_min_chunks": 1}


# Children --------------------------------------------------------------------------------------
def sample_texts(corpus: Path, n: int) -> list[str]:
    """The indexed text of the first `n` distractor chunks."""
    from ptce_assistant.chunking import chunk_document
    from ptce_assistant.documents import load_document

    texts: list[str] = []
    for path in sorted(corpus.glob("rapport-*.md")):
        texts += [c.indexed_text() for c in chunk_document(load_document(path, corpus))]
        if len(texts) >= n:
            break
    return texts[:n]


def probe(corpus: Path, work: Path) -> None:
    """Child: chunks/s of each embedding configuration on the same sample, through `encode_batches`."""
    import torch

    texts = sample_texts(corpus, PROBE_SAMPLE)
    rates: dict[str, float] = {}
    for config in EMBEDDING_CONFIGS:
        settings = bench_settings(work, corpus_dir=corpus, **embedding_settings(config))
        embedder = Assistant(settings).embedder
        torch.set_num_threads(settings.torch_threads)  # the embedder is process-wide: set for this config
        size = settings.ingest_batch_size
        batches = [texts[i : i + size] for i in range(0, len(texts), size)]
        if settings.ingest_workers > 1:
            with EmbeddingPool(settings, settings.ingest_workers) as pool:
                list(pool.map([["chauffe"]] * settings.ingest_workers * 2))  # workers loaded before timing
                _, elapsed = timed(list, pool.map(batches))
        else:
            embedder.encode_passages(texts[:16])  # warm-up
            _, elapsed = timed(list, encode_batches(embedder, settings, batches))
        rates[config] = round(len(texts) / (elapsed / 1000), 1)
        print(f"probe {config}: {rates[config]} chunks/s", file=sys.stderr, flush=True)
    child_report(rates=rates, sample=len(texts))


def study_rank(hits: Sequence[Any], quotes: Sequence[str]) -> int | None:
    """Rank of the first hit from the study that covers an expected quote (distractors never count)."""
    study = STUDY.name
    return next(
        (h.rank for h in hits if h.chunk.doc_id == study and covers_any(h.chunk.text, quotes)),
        None,
    )


def share_within(ranks: Sequence[int | None], depth: int) -> float:
    """Share of the questions whose passage was found at rank `depth` or better."""
    return round(sum(r is not None and r <= depth for r in ranks) / len(ranks), 3)


def depth_diagnostic(assistant: Assistant, cases: Sequence[EvalCase]) -> dict[str, Any]:
    """Where the study's passage sits in deeper dense and BM25 lists, and hit@k if fusion took that many."""
    from ptce_assistant.conversation import standalone_query
    from ptce_assistant.retrieval import HybridSearcher

    deep = assistant.settings.model_copy(update={"candidates": DEEP})
    searcher = HybridSearcher(assistant.index, assistant.embedder, deep, assistant.searcher.reranker)
    dense: list[int | None] = []
    lexical: list[int | None] = []
    fused: list[int | None] = []
    for case in cases:
        query = standalone_query(case.question, case.history, assistant.index.chunks)
        hits = searcher.search(query.text, k=DEEP).hits
        study = [h for h in hits if h.chunk.doc_id == STUDY.name and covers_any(h.chunk.text, case.expected_quotes)]
        dense.append(min((h.dense_rank for h in study if h.dense_rank), default=None))
        lexical.append(min((h.lexical_rank for h in study if h.lexical_rank), default=None))
        fused.append(study[0].rank if study else None)
    return (
        {f"deep{DEEP}_hit@{k}": share_within(fused, k) for k in RANKS}
        | {f"study_in_dense_top{d}": share_within(dense, d) for d in (30, DEEP)}
        | {f"study_in_lexical_top{d}": share_within(lexical, d) for d in (30, DEEP)}
    )


def quality(assistant: Assistant, cases: Sequence[EvalCase], runs: int) -> dict[str, Any]:
    """Search and ask latency over the dev questions, hit@k of the study's passages, and the answers' evidence."""
    search_ms: list[float] = []
    ask_ms: list[float] = []
    ranks: list[int | None] = []
    quoted: list[int | None] = []
    cited: list[bool] = []
    decisions: list[bool] = []
    for run in range(runs):
        for case in cases:
            (_, result), elapsed = timed(assistant.retrieve, case.question, case.history, k=max(RANKS))
            search_ms.append(elapsed)
            answer, elapsed = timed(assistant.ask, case.question, case.history, mode="extractive")
            ask_ms.append(elapsed)
            if run:
                continue
            decisions.append(answer.abstained != case.answerable)
            if case.answerable:
                ranks.append(study_rank(result.hits, case.expected_quotes))
                quoted.append(
                    first_covering_rank([h.chunk.text for h in result.hits], case.expected_quotes)
                )  # any document
                cited.append(
                    any(c.doc_id == STUDY.name and covers_any(c.quote, case.expected_quotes) for c in answer.citations)
                )
    found = {f"hit@{k}": share_within(ranks, k) for k in RANKS}
    found |= {f"any_doc_hit@{k}": share_within(quoted, k) for k in RANKS}
    return {
        "search_ms": stats(search_ms),
        "ask_ms": stats(ask_ms),
        **found,
        **depth_diagnostic(assistant, [case for case in cases if case.answerable]),
        "answer_evidence_from_study": round(sum(cited) / len(cited), 3),
        "decision_accuracy": round(sum(decisions) / len(decisions), 3),
        "answerable_cases": len(ranks),
        "cases": len(cases),
    }


def disk_usage(folder: Path) -> int:
    """Bytes allocated on disk under `folder` (sparse files count what they use)."""
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def measure_size(chunks: int, config: str, runs: int, questions: str | None = None) -> None:
    """Child: generate (once), index from scratch, then measure one corpus size.

    `questions="float32"`: the searches embed questions as shipped (float32, ONNX Runtime) even when
    the passages were embedded at int8 (PTCE_EMBEDDING_PRECISION=int8, 3x faster ingestion): the
    latency is the product's, the hit rates pair int8 passages with float32 questions.
    """
    (corpus, generate_ms) = timed(ensure_corpus, chunks)
    work = corpus.parent
    shutil.rmtree(work / "index", ignore_errors=True)
    settings = bench_settings(work, corpus_dir=corpus, **embedding_settings(config))
    assistant = Assistant(settings)

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "embedding" and (done == total or done % 2048 < settings.ingest_batch_size):
            print(f"  {chunks}: embedded {done}/{total}", file=sys.stderr, flush=True)

    report = assistant.ingest(progress=progress)  # the product's ingestion, pool included
    generation = assistant.index.generation
    size = disk_usage(settings.index_dir / generation)
    started = time.perf_counter()
    read_as = settings.model_copy(update={"embedding_precision": questions}) if questions else settings
    reader = Assistant(read_as)  # a new app instance opening the index
    reader.index  # noqa: B018
    open_s = time.perf_counter() - started
    reader.vocabulary  # noqa: B018  # the gate's vocabulary, built on the first question
    vocabulary_s = time.perf_counter() - started - open_s
    child_report(
        chunks=report.chunks_total,
        documents=len(reader.index.manifest.documents),
        generate_s=round(generate_ms / 1000, 1),
        ingest_s=round(report.seconds, 1),
        chunks_per_s=round(report.chunks_per_second, 1),
        embedding=config,
        precision=settings.embedding_precision,
        question_precision=read_as.embedding_precision,
        question_runtime=reader.embedder.runtime,
        index_bytes=size,
        open_s=round(open_s, 2),
        vocabulary_s=round(vocabulary_s, 2),
        **quality(reader, dev_cases(), runs),
    )


# Parent ----------------------------------------------------------------------------------------
def main() -> None:
    """Probe the embedding configurations, then measure each size in its own process."""
    cli = parser("Ingestion, index size, search latency and quality at several corpus sizes.", default_runs=1)
    cli.add_argument("--chunks", default="1000,10000,100000", help="comma-separated corpus sizes in chunks")
    cli.add_argument("--max-minutes", type=float, default=40.0, help="skip a size projected to ingest for longer")
    cli.add_argument("--embedding", choices=[*EMBEDDING_CONFIGS, "probe"], default="probe")
    cli.add_argument(
        "--questions",
        choices=["float32"],
        help="embed questions at float32 (ONNX Runtime, as shipped) over passages embedded at another precision",
    )
    cli.add_argument("--child", nargs=2, metavar=("JOB", "CHUNKS"), help=argparse.SUPPRESS)
    args = cli.parse_args()
    if args.child:
        job, chunks = args.child[0], int(args.child[1])
        if job == "probe":
            corpus = ensure_corpus(chunks)
            probe(corpus, corpus.parent)
        else:
            measure_size(chunks, job, args.runs, args.questions)
        return

    sizes = [int(s) for s in args.chunks.split(",")]
    recorder = Recorder.start("scale", args)
    results: dict[str, Any] = {}
    config = args.embedding
    if config == "probe":
        found = run_child(SCRIPT, ["--child", "probe", str(sizes[0])])
        results["embedding_probe"] = found
        config = max(found["rates"], key=found["rates"].get)
        print(f"embedding: {config} ({found['rates']})", flush=True)
    rows = []
    rate: float | None = None
    for size in sizes:
        projected = size / rate / 60 if rate else None
        if projected is not None and projected > args.max_minutes:
            results[str(size)] = {"skipped": True, "projected_ingest_minutes": round(projected, 1)}
            rows.append(Row(f"{size:,} chunks: ingestion", f"not run: projected {projected:.0f} min"))
            print(f"{size}: projected {projected:.0f} min > {args.max_minutes:g}: not run", flush=True)
            continue
        questions = ["--questions", args.questions] if args.questions else []
        found = run_child(
            SCRIPT, ["--child", config, str(size), "--runs", str(args.runs), *questions], timeout=6 * 3600
        )
        results[str(size)] = found
        rate = found["chunks_per_s"]
        label = f"{found['chunks']:,} chunks"
        rows += [
            Row(
                f"{label}: ingestion s, chunks/s ({config}, {found['precision']})",
                f"{found['ingest_s']:,.0f} s, {found['chunks_per_s']:.1f}/s",
            ),
            Row(
                f"{label}: index on disk, peak RSS (+ each embedding worker)",
                f"{found['index_bytes'] / 2**20:,.0f} MiB, {found['max_rss_mb']:,.0f} MiB"
                + (f" (+ {found['worker_max_rss_mb']:,.0f} MiB)" if found.get("worker_max_rss_mb") else ""),
            ),
            Row(
                f"{label}: search p50 / p95 (ms), questions {found['question_precision']} "
                f"({found['question_runtime']})",
                pair(found["search_ms"]),
            ),
            Row(f"{label}: extractive ask p50 / p95 (ms)", pair(found["ask_ms"])),
            Row(
                f"{label}: study hit@1 / hit@3, evidence cited",
                f"{found['hit@1']:.2f} / {found['hit@3']:.2f}, {found['answer_evidence_from_study']:.2f}",
            ),
            Row(
                f"{label}: hit@1 / hit@3 of any document covering the quote (distractors quoting the study count)",
                f"{found['any_doc_hit@1']:.2f} / {found['any_doc_hit@3']:.2f}",
            ),
            Row(
                f"{label}: study passage in dense / BM25 top 30 (top {DEEP}); hit@3 fusing {DEEP} of each",
                f"{found['study_in_dense_top30']:.2f} / {found['study_in_lexical_top30']:.2f} "
                f"({found[f'study_in_dense_top{DEEP}']:.2f} / {found[f'study_in_lexical_top{DEEP}']:.2f}); "
                f"{found[f'deep{DEEP}_hit@3']:.2f}",
            ),
            Row(
                f"{label}: open index, build gate vocabulary (ms)",
                f"{ms(found['open_s'] * 1000)}, {ms(found['vocabulary_s'] * 1000)}",
            ),
        ]
    recorder.finish(results, rows, runs=f"{args.runs}×dev")


if __name__ == "__main__":
    main()
