"""How much of the exact nearest-neighbour list Chroma's HNSW graph returns at scale, by ef_search.

Reads the vectors of an index built by `scale.py` (default: the 100,000-chunk one, int8), then for
each answerable dev question compares Chroma's top 30 with the exact top 30 (numpy, all vectors):
recall@30, whether the study's covering passage is among the 30 dense candidates, and query time.
Each configuration is a fresh collection built from the same vectors (nothing is re-embedded).

    .venv/bin/python benchmarks/hnsw_recall.py [--chunks 100000] [--ef 100,500]
"""

from __future__ import annotations

import shutil
import time
from typing import Any

import chromadb
import numpy as np
from harness import WORK_DIR, Recorder, Row, bench_settings, dev_cases, parser, stats
from synthetic import STUDY

from ptce_assistant.assistant import Assistant
from ptce_assistant.evals.metrics import covers_any
from ptce_assistant.thesaurus import expansions

DEPTH = 30


def main() -> None:
    """Recall of HNSW against exact search for each ef_search."""
    cli = parser("HNSW recall against exact search at scale.", default_runs=1)
    cli.add_argument("--chunks", type=int, default=100_000)
    cli.add_argument("--ef", default="100,500", help="comma-separated ef_search values")
    args = cli.parse_args()
    recorder = Recorder.start("hnsw_recall", args)
    work = WORK_DIR / f"synthetic-{args.chunks}-seed2014"
    settings = bench_settings(work, corpus_dir=work / "corpus", embedding_precision="int8")
    assistant = Assistant(settings)
    source = assistant.index.vectors.collection
    ids: list[str] = []
    parts: list[np.ndarray] = []
    while (batch := source.get(include=["embeddings"], limit=5000, offset=len(ids)))["ids"]:
        ids += batch["ids"]
        parts.append(np.asarray(batch["embeddings"], dtype=np.float32))
    vectors = np.vstack(parts)
    study = [c for c in assistant.index.chunks if c.doc_id == STUDY.name]
    questions = []
    for case in dev_cases():
        if case.answerable:
            query, _ = assistant.retrieve(case.question, case.history)
            vector = assistant.embedder.encode_query(f"{query.text} {expansions(query.text)}".strip())
            relevant = {c.chunk_id for c in study if covers_any(c.text, case.expected_quotes)}
            questions.append((vector, relevant))

    exact = [[ids[i] for i in np.argsort(-(vectors @ v))[:DEPTH]] for v, _ in questions]
    results: dict[str, Any] = {
        "chunks": len(ids),
        "exact": {
            "study_in_top30": round(
                float(np.mean([bool(set(e) & r) for e, (_, r) in zip(exact, questions, strict=True)])), 3
            )
        },
    }
    rows = [
        Row(
            f"{len(ids):,} chunks, exact search: study passage among 30 dense candidates",
            f"{results['exact']['study_in_top30']:.2f}",
        )
    ]
    for ef in [int(x) for x in args.ef.split(",")]:
        folder = WORK_DIR / f"hnsw-ef{ef}"
        shutil.rmtree(folder, ignore_errors=True)
        client = chromadb.PersistentClient(path=str(folder))
        collection = client.create_collection(
            f"recall-ef{ef}", embedding_function=None, configuration={"hnsw": {"space": "cosine", "ef_search": ef}}
        )
        started = time.perf_counter()
        for i in range(0, len(ids), 5000):
            collection.add(ids=ids[i : i + 5000], embeddings=vectors[i : i + 5000])
        build_s = time.perf_counter() - started
        recall, found, timings = [], [], []
        for (vector, relevant), truth in zip(questions, exact, strict=True):
            started = time.perf_counter()
            got = collection.query(query_embeddings=[vector], n_results=DEPTH)["ids"][0]
            timings.append((time.perf_counter() - started) * 1000)
            recall.append(len(set(got) & set(truth)) / DEPTH)
            found.append(bool(set(got) & relevant))
        results[f"ef_search={ef}"] = {
            "build_s": round(build_s, 1),
            "recall_at_30": round(float(np.mean(recall)), 3),
            "recall_at_30_min": round(float(np.min(recall)), 3),
            "study_in_top30": round(float(np.mean(found)), 3),
            "query_ms": stats(timings),
        }
        r = results[f"ef_search={ef}"]
        rows.append(
            Row(
                f"{len(ids):,} chunks, HNSW ef_search={ef}: recall@30 vs exact, study among 30, query p50 (ms)",
                f"{r['recall_at_30']:.3f}, {r['study_in_top30']:.2f}, {r['query_ms']['p50']:.1f}",
            )
        )
        shutil.rmtree(folder, ignore_errors=True)
    recorder.finish(results, rows, runs=f"{len(questions)} dev questions")


if __name__ == "__main__":
    main()
