"""Passages embedded per second by batch size (the model's forward pass), one torch thread, per precision.

Sizes alternate within each run on the same 256 synthetic chunks sorted by length, as ingestion sends
them, so machine noise hits every size alike. This measured the `PTCE_EMBEDDING_BATCH_SIZE` default.

    .venv/bin/python benchmarks/embedding_batch.py [--runs 3] [--sizes 8,16,32] [--precisions float32,int8]
"""

from __future__ import annotations

import statistics
from typing import Any

import torch
from harness import WORK_DIR, Recorder, Row, bench_settings, parser, timed
from scale import PROBE_SAMPLE, sample_texts
from synthetic import ensure_corpus

from ptce_assistant.embeddings import get_embedder


def main() -> None:
    """Median chunks/s of each batch size, and its ratio to the largest size."""
    cli = parser("Embedding throughput by batch size.", default_runs=3)
    cli.add_argument("--sizes", default="8,16,32", help="comma-separated batch sizes")
    cli.add_argument("--precisions", default="float32,int8")
    args = cli.parse_args()
    recorder = Recorder.start("embedding_batch", args)
    sizes = [int(s) for s in args.sizes.split(",")]
    torch.set_num_threads(1)
    corpus = ensure_corpus(1000)
    texts = sorted(sample_texts(corpus, PROBE_SAMPLE), key=len)
    results: dict[str, Any] = {"sample": len(texts), "threads": 1}
    rows: list[Row] = []
    for precision in args.precisions.split(","):
        embedder = get_embedder(bench_settings(WORK_DIR / "embedding-batch", embedding_precision=precision))
        model = embedder.model
        model.encode(texts[:16], batch_size=16)  # warm-up
        rates: dict[int, list[float]] = {size: [] for size in sizes}
        for _ in range(args.runs):
            for size in sizes:
                _, elapsed = timed(model.encode, ["passage: " + t for t in texts], batch_size=size)
                rates[size].append(round(len(texts) / (elapsed / 1000), 1))
        medians = {size: statistics.median(found) for size, found in rates.items()}
        results[precision] = {"rates": rates, "median": medians}
        largest = max(sizes)
        for size in sizes:
            rows.append(
                Row(
                    f"embedding, {precision}, 1 thread, batch {size}: chunks/s median (÷ batch {largest})",
                    f"{medians[size]:.1f}/s ({medians[size] / medians[largest]:.2f}×)",
                )
            )
    recorder.finish(results, rows, runs=f"{args.runs}×{len(texts)} chunks")


if __name__ == "__main__":
    main()
