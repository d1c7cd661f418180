"""Ingestion throughput and peak memory: the facade's ingest vs the naive pipeline's indexing.

Each run is a fresh process (its ru_maxrss is its own peak memory) indexing the same corpus from
scratch: ours with `Assistant.ingest` into a temporary index folder (chunking, embedding, Chroma,
BM25, manifest, atomic flip); the naive pipeline loads the files, splits them into 1000-character
chunks and embeds them into an in-memory Chroma. The embedder is loaded before the clock starts.
The bundled corpus is tiny (one study): pass --chunks N for a synthetic corpus of about N chunks.

    .venv/bin/python benchmarks/ingest.py [--runs 3] [--chunks 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import (
    BUNDLED_CORPUS,
    WORK_DIR,
    NaiveRag,
    Recorder,
    Row,
    bench_settings,
    child_report,
    number,
    parser,
    ratio,
    run_child,
    stats,
    times,
)

from ptce_assistant.embeddings import ingest_workers

SCRIPT = Path(__file__).resolve()


def child(job: str, corpus: Path) -> None:
    """Index `corpus` from scratch once."""
    from ptce_assistant.assistant import Assistant
    from ptce_assistant.embeddings import get_embedder

    WORK_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=WORK_DIR, prefix="ingest-") as tmp:
        settings = bench_settings(Path(tmp), corpus_dir=corpus)
        get_embedder(settings)
        started = time.perf_counter()
        if job == "ours":
            report = Assistant(settings).ingest()
            chunks = report.chunks_embedded
        else:
            naive = NaiveRag(settings)
            chunks = naive.baseline.chunk_count
        seconds = time.perf_counter() - started
    child_report(seconds=seconds, chunks=chunks)


def main() -> None:
    """Alternate ours and naive, `--runs` times each."""
    cli = parser("Ingestion throughput and peak memory: the assistant vs the naive pipeline.", default_runs=3)
    cli.add_argument("--chunks", type=int, default=0, help="synthetic corpus of about N chunks (0: bundled corpus)")
    cli.add_argument("--child", nargs=2, metavar=("JOB", "CORPUS"), help=argparse.SUPPRESS)
    args = cli.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    recorder = Recorder.start("ingest", args)
    if args.chunks:
        from synthetic import ensure_corpus

        corpus = ensure_corpus(args.chunks)
    else:
        corpus = BUNDLED_CORPUS
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "naive": []}
    for _ in range(args.runs):
        for job, found in runs.items():
            found.append(run_child(SCRIPT, ["--child", job, str(corpus)], timeout=6 * 3600))
    results: dict[str, Any] = {"corpus": str(corpus.relative_to(BUNDLED_CORPUS.parent))}
    for job, found in runs.items():
        results[job] = {
            "chunks": found[0]["chunks"],
            "seconds": stats([r["seconds"] for r in found]),
            "chunks_per_s": stats([r["chunks"] / r["seconds"] for r in found]),
            "max_rss_mb": stats([r["max_rss_mb"] for r in found]),
        }
    ours, naive = results["ours"], results["naive"]
    results["naive_over_ours_seconds_p50"] = ratio(naive["seconds"]["p50"], ours["seconds"]["p50"])
    label = f"{args.chunks:,}-chunk synthetic corpus" if args.chunks else "bundled corpus"
    settings = bench_settings(WORK_DIR)
    label += f" ({settings.embedding_precision}, {ingest_workers(settings, ours['chunks'])} embedding process(es))"
    results["embedding_precision"] = settings.embedding_precision
    recorder.finish(
        results,
        [
            Row(
                f"ingest {label}: s p50, chunks, chunks/s p50",
                f"{number(ours['seconds']['p50'], '.2f')}, {ours['chunks']}, {number(ours['chunks_per_s']['p50'])}",
                f"{number(naive['seconds']['p50'], '.2f')}, {naive['chunks']}, {number(naive['chunks_per_s']['p50'])}",
                times(results["naive_over_ours_seconds_p50"]),
            ),
            Row(
                f"ingest {label}: peak RSS p50 (MiB)",
                number(ours["max_rss_mb"]["p50"], ".0f"),
                number(naive["max_rss_mb"]["p50"], ".0f"),
            ),
        ],
        runs=f"{args.runs} processes each",
    )


if __name__ == "__main__":
    main()
