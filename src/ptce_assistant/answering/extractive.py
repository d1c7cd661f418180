"""The extractive composer: a short answer made of verbatim sentences, each with its [n]."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ptce_assistant.answering.answer import Citation
from ptce_assistant.answering.citations import cite, markdown_literal, sentence_spans
from ptce_assistant.conversation import StandaloneQuery
from ptce_assistant.lexical import french_terms, strip_accents
from ptce_assistant.retrieval import Hit

_WHOLE_LIST = re.compile(
    r"\b(quels sont|quelles sont|lesquels|lesquelles|liste|enumere|cite[rz]? les|les \d+|les (huit|trois|quatre)"
    r"|what are|list|which are|name the)\b",
    re.IGNORECASE,
)
LEAD = {"fr": "D'après le corpus (citations exactes) :", "en": "According to the corpus (verbatim quotes):"}


def _best_sentences(chunk_text: str, terms: set[str]) -> tuple[int, int]:
    """The span of the passage's sentences that share (nearly) the most terms with the query.

    Neighbouring sentences that match almost as well are kept together: in this corpus the answer
    often spans a claim and its explanation ("…méritent d'être soulignées : les freins… Ces problématiques…").
    """
    spans = sentence_spans(chunk_text)
    if not spans:
        return 0, len(chunk_text)
    scores = [len(terms & set(french_terms(chunk_text[s:e]))) for s, e in spans]
    best = max(scores)
    chosen = [span for span, score in zip(spans, scores, strict=True) if score >= max(best - 1, 1)] or spans[:1]
    return chosen[0][0], chosen[-1][1]


def _first_sentence(chunk_text: str) -> tuple[int, int]:
    spans = sentence_spans(chunk_text)
    return spans[0] if spans else (0, len(chunk_text))


def wants_whole_list(query: str) -> bool:
    """'Quels sont les huit leviers ?' asks for every item, not the best one."""
    return bool(_WHOLE_LIST.search(strip_accents(query)))


def compose_extractive(
    query: StandaloneQuery, hits: Sequence[Hit], list_items: Sequence[Hit], lang: str, max_sentences: int
) -> tuple[str, list[Citation]]:
    """Answer text with [n] markers and the citations it uses.

    `list_items` holds every item of the list the question asks for in full (empty otherwise).
    """
    terms = set(french_terms(query.text))
    citations: list[Citation] = []
    lines: list[str] = []
    if list_items:
        for hit in list_items:
            start, end = _first_sentence(hit.chunk.text)
            citations.append(cite(len(citations) + 1, hit.chunk, start, end))
            quote = markdown_literal(hit.chunk.text[start:end])
            lines.append(f"{hit.chunk.list_position}. « {quote} » [{len(citations)}]")
        return f"{LEAD[lang]}\n\n" + "\n".join(lines), citations
    chosen = _chosen_hits(query, hits, max_sentences)
    for hit in chosen:
        start, end = _best_sentences(hit.chunk.text, terms)
        citations.append(cite(len(citations) + 1, hit.chunk, start, end))
        lines.append(f"- « {markdown_literal(hit.chunk.text[start:end])} » [{len(citations)}]")
    return f"{LEAD[lang]}\n\n" + "\n".join(lines), citations


def _chosen_hits(query: StandaloneQuery, hits: Sequence[Hit], max_sentences: int) -> list[Hit]:
    """The top passage, and the next ones only while they are nearly as relevant."""
    if not hits:
        return []
    if query.list_item is not None:
        return [hits[0]]
    top = hits[0]
    chosen = [top]
    top_dense = top.dense_similarity or 0.0
    for hit in hits[1:]:
        if len(chosen) >= max_sentences:
            break
        close_dense = hit.dense_similarity is not None and hit.dense_similarity >= top_dense - 0.015
        both_agree = (
            hit.dense_rank is not None
            and hit.lexical_rank is not None
            and hit.dense_rank <= 2
            and hit.lexical_rank <= 2
        )
        if close_dense or both_agree:
            chosen.append(hit)
    return chosen
