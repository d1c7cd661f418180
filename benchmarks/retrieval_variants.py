"""Retrieval variants tried against the shipped ranking: quality on the tuning and validation splits.

Not a timing benchmark: it answers "would another fusion or passage representation have done better?"
Each variant re-ranks the bundled corpus's chunks for every answerable case (standalone query from the
conversation module, ordinal references pinned first as the facade does) and scores hit@1, hit@3 and
evidence@800 with the eval suite's rules. `shipped` goes through `Assistant.retrieve` itself; the
others re-implement dense + BM25 + reciprocal-rank fusion in memory with one change each.

With `--hyde`, two more variants add a hypothetical passage the local LLM writes for the question
(HyDE: Gao et al. 2022) to the dense query; the passages are cached in `benchmarks/work/hyde.json`.

Splits: `dev` (tuning) and `validation` = heldout + heldout-blind + heldout-blind-2 (since session 5),
whose case failures are visible in the committed reports and which therefore serve to choose among
variants, never as a final estimate (that is heldout-blind-6's role, run once).

Multi-granularity (session 5): a passage scored by the mean of its own cosine, its best sentence's and
its section's (the section's heading and all its passages embedded as one text).

    .venv/bin/python benchmarks/retrieval_variants.py [--hyde]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from harness import WORK_DIR, Recorder, Row, dev_cases, parser, prepared_assistant

from ptce_assistant.assistant import Assistant
from ptce_assistant.config import PROJECT_ROOT
from ptce_assistant.evals.dataset import EvalCase
from ptce_assistant.evals.metrics import retrieval_scores
from ptce_assistant.retrieval import Hit, reciprocal_rank_fusion
from ptce_assistant.text import sentence_spans
from ptce_assistant.thesaurus import expansions

METRICS = ("hit@1", "hit@3", "evidence@800")
VALIDATION = ("heldout.jsonl", "heldout-blind.jsonl", "heldout-blind-2.jsonl")


@dataclass(frozen=True)
class Variant:
    """One change to the shipped ranking."""

    name: str
    what: str
    dense_queries: tuple[str, ...] = ("expanded",)  # "expanded" (with the thesaurus), "raw" and/or "hyde"
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    rrf_k: int = 60
    passage: str = "indexed"  # "indexed" (breadcrumb + text, as shipped) or "text" (no breadcrumb)
    sentences: str | None = None  # None, "max" or "mean" of the chunk's and its best sentence's cosine
    feedback: float = 0.0  # Rocchio weight of the mean of the two best passages added to the query
    section: bool = False  # average in the cosine of the passage's whole section


VARIANTS = (
    Variant("reimplemented", "the shipped ranking re-implemented in memory (must equal `shipped`)"),
    Variant("rrf_k=10", "sharper reciprocal-rank fusion", rrf_k=10),
    Variant("dense x1.5", "dense ranking weighted 1.5 in the fusion", dense_weight=1.5),
    Variant("dense x2", "dense ranking weighted 2 in the fusion", dense_weight=2.0),
    Variant("raw dense query", "dense query without the thesaurus expansion", dense_queries=("raw",)),
    Variant(
        "both dense queries", "dense rankings of the raw and the expanded query", dense_queries=("expanded", "raw")
    ),
    Variant("lexical x0.7", "BM25 weighted 0.7", lexical_weight=0.7),
    Variant("no breadcrumb", "passages embedded without their breadcrumb", passage="text"),
    Variant("best sentence (max)", "max of chunk and best-sentence cosine", sentences="max"),
    Variant("best sentence (mean)", "mean of chunk and best-sentence cosine", sentences="mean"),
    Variant("feedback 0.3", "pseudo-relevance feedback on the dense query", feedback=0.3),
    Variant("feedback 0.6", "pseudo-relevance feedback on the dense query", feedback=0.6),
    Variant("passage + section", "mean of the passage's and its section's cosine", section=True),
    Variant(
        "multi-granularity",
        "mean of the passage's, its best sentence's and its section's cosine",
        sentences="mean",
        section=True,
    ),
)
HYDE_VARIANTS = (
    Variant("hyde", "dense query = expanded query + the LLM's hypothetical passage", dense_queries=("hyde",)),
    Variant(
        "expanded + hyde",
        "dense rankings of the expanded query and of the HyDE query",
        dense_queries=("expanded", "hyde"),
    ),
)
HYDE_PROMPT = (
    "Tu écris un extrait d'une étude française sur les Pôles territoriaux de coopération économique (PTCE) "
    "et le rôle des collectivités. Écris en français deux phrases de cette étude qui répondraient à la "
    "question suivante, sans introduction.\n\nQuestion : {question}"
)
HYDE_CACHE = WORK_DIR / "hyde.json"


class Hypothetical:
    """Passages the local LLM imagines for each query (HyDE), cached on disk across runs."""

    def __init__(self, assistant: Assistant) -> None:
        from ptce_assistant import llm

        self.model = llm.get_chat_model(assistant.settings.model_copy(update={"llm_max_tokens": 90}), "local")
        self.cache: dict[str, str] = json.loads(HYDE_CACHE.read_text()) if HYDE_CACHE.is_file() else {}

    def __call__(self, query: str) -> str:
        if query not in self.cache:
            reply = self.model.invoke(HYDE_PROMPT.format(question=query))
            self.cache[query] = str(reply.content).strip()
            HYDE_CACHE.parent.mkdir(parents=True, exist_ok=True)
            HYDE_CACHE.write_text(json.dumps(self.cache, ensure_ascii=False, indent=1))
        return self.cache[query]


class Ranker:
    """Dense + BM25 ranking of the bundled index's chunks, in memory, with a variant's change."""

    def __init__(self, assistant: Assistant, hypothetical: Callable[[str], str] | None = None) -> None:
        self.assistant = assistant
        self.hypothetical = hypothetical
        self.chunks = assistant.index.chunks
        embed = assistant.embedder.encode_passages
        self.ids = [c.chunk_id for c in self.chunks]
        self.vectors = {
            "indexed": embed([c.indexed_text() for c in self.chunks]),
            "text": embed([c.text for c in self.chunks]),
        }
        owners, sentences = [], []
        for i, chunk in enumerate(self.chunks):
            for start, end in sentence_spans(chunk.text):
                sentence = chunk.text[start:end].strip()
                if len(sentence) > 20:
                    owners.append(i)
                    sentences.append(" > ".join(chunk.breadcrumb) + " : " + sentence)
        self.sentence_owner = np.array(owners)
        sections: dict[tuple[str, ...], list[int]] = {}
        for i, chunk in enumerate(self.chunks):
            sections.setdefault((chunk.doc_id, *chunk.breadcrumb), []).append(i)
        section_texts = [
            " > ".join(self.chunks[members[0]].breadcrumb) + "\n" + "\n".join(self.chunks[i].text for i in members)
            for members in sections.values()
        ]
        section_vectors = embed(section_texts)
        self.section_of = np.zeros(len(self.chunks), dtype=int)
        for number, members in enumerate(sections.values()):
            self.section_of[members] = number
        self.section_vectors = section_vectors
        self.sentence_vectors = embed(sentences)
        self.query_vector: Callable[[str], np.ndarray] = cache(assistant.embedder.encode_query)

    def _dense(self, variant: Variant, text: str) -> list[str]:
        passages = self.vectors[variant.passage]
        query = self.query_vector(text)
        if variant.feedback:
            best = np.argsort(-(passages @ query))[:2]
            query = query + variant.feedback * passages[best].mean(axis=0)
            query = query / np.linalg.norm(query)
        scores = passages @ query
        if variant.sentences:
            best_sentence = np.full(len(self.ids), -np.inf)
            np.maximum.at(best_sentence, self.sentence_owner, self.sentence_vectors @ query)
            best_sentence = np.where(np.isinf(best_sentence), scores, best_sentence)
            if variant.section:
                scores = (scores + best_sentence + (self.section_vectors @ query)[self.section_of]) / 3
            else:
                scores = (
                    np.maximum(scores, best_sentence) if variant.sentences == "max" else (scores + best_sentence) / 2
                )
        elif variant.section:
            scores = (scores + (self.section_vectors @ query)[self.section_of]) / 2
        return [self.ids[i] for i in np.argsort(-scores)]

    def rank(self, variant: Variant, query: str) -> list[str]:
        """Chunk ids, best first."""
        expanded = f"{query} {expansions(query)}".strip()
        texts = {"expanded": expanded, "raw": query}
        if "hyde" in variant.dense_queries:
            assert self.hypothetical is not None, "HyDE variants need --hyde"
            texts["hyde"] = f"{expanded} {self.hypothetical(query)}"
        weighted = [(self._dense(variant, texts[q]), variant.dense_weight) for q in variant.dense_queries]
        lexical = [cid for cid, _ in self.assistant.index.lexical.search(expanded, len(self.ids))]
        weighted.append((lexical, variant.lexical_weight))
        scores: dict[str, float] = {}
        for ranking, weight in weighted:
            for cid, score in reciprocal_rank_fusion([ranking], variant.rrf_k):
                scores[cid] = scores.get(cid, 0.0) + weight * score
        return sorted(scores, key=lambda cid: (-scores[cid], cid))


Rank = Callable[[Any, list[Hit]], list[str]]


def evaluate(assistant: Assistant, cases: Sequence[EvalCase], rank: Rank) -> dict[str, float]:
    """Mean of each metric over the answerable cases; `rank(query, hits)` gives the ranked chunk ids."""
    found: dict[str, list[float]] = {m: [] for m in METRICS}
    for case in cases:
        if not case.answerable:
            continue
        query, result = assistant.retrieve(case.question, case.history, k=10)
        ids = rank(query, result.hits)
        scores = retrieval_scores([assistant.index.by_id[cid].text for cid in ids[:10]], case.expected_quotes)
        for metric in METRICS:
            found[metric].append(scores[metric])
    return {m: round(float(np.mean(v)), 3) for m, v in found.items()} | {"n": len(found["hit@1"])}


def main() -> None:
    """Score the shipped ranking and every variant on the dev and validation splits."""
    cli = parser("Retrieval variants on the tuning and validation splits.", default_runs=1)
    cli.add_argument("--hyde", action="store_true", help="also the HyDE variants (local LLM, ~5 s a question)")
    args = cli.parse_args()
    recorder = Recorder.start("retrieval_variants", args)
    assistant = prepared_assistant()
    ranker = Ranker(assistant, Hypothetical(assistant) if args.hyde else None)
    variants = VARIANTS + HYDE_VARIANTS if args.hyde else VARIANTS
    splits = {
        "dev": dev_cases(),
        "validation": [c for name in VALIDATION for c in dev_cases(PROJECT_ROOT / "evals" / name)],
    }

    def shipped(_query: Any, hits: list[Hit]) -> list[str]:
        return [h.chunk.chunk_id for h in hits]

    def variant_rank(variant: Variant) -> Rank:
        def rank(query: Any, hits: list[Hit]) -> list[str]:
            ids = ranker.rank(variant, query.text)
            pinned = [h.chunk.chunk_id for h in hits[:1]] if query.list_item is not None else []
            return pinned + [cid for cid in ids if cid not in pinned]  # the facade pins a named list item

        return rank

    results: dict[str, Any] = {"shipped": {s: evaluate(assistant, cases, shipped) for s, cases in splits.items()}}
    for variant in variants:
        rank = variant_rank(variant)
        results[variant.name] = {"what": variant.what} | {s: evaluate(assistant, c, rank) for s, c in splits.items()}

    def cells(found: dict[str, Any]) -> str:
        return " · ".join(f"{found[m]:.3f}" for m in METRICS)

    rows = [
        Row(f"{name}: dev / validation hit@1 · hit@3 · ev@800", f"{cells(r['dev'])} / {cells(r['validation'])}")
        for name, r in results.items()
    ]
    n = results["shipped"]
    recorder.finish(results, rows, runs=f"{n['dev']['n']} dev + {n['validation']['n']} validation cases")


if __name__ == "__main__":
    main()
