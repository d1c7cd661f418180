"""Crash loop: SIGKILL `ptce ingest` at random points, then check that the index is whole.

Each run changes the corpus a little (a file edited, added or deleted; sometimes `--rebuild`), starts
`ptce ingest` as a real process and kills it after a seeded random delay, counted either from the
process start or from the moment its `.staging-*` folder appears (the build and swap phases). After
every kill the index must open, hold one vector per chunk, a lexical index naming only known chunks,
exactly the previous or the new set of documents (never a mix), and answer a search; the next run
must complete. tests/test_crash_safety.py runs a few kills; this script runs many:

    .venv/bin/python benchmarks/crash_loop.py --runs 30 [--seed 2014] [--extra-files 30]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ptce_assistant.config import PROJECT_ROOT, Settings
from ptce_assistant.index import POINTER, CorpusIndex, current_generation
from ptce_assistant.retrieval import HybridSearcher

if TYPE_CHECKING:
    from ptce_assistant.embeddings import SentenceEmbeddings

STUDY = PROJECT_ROOT / "corpus" / "rtes-2014-ptce-role-des-collectivites.txt"
PTCE = Path(sys.executable).with_name("ptce")
_SUBJECTS = [
    "La communauté de communes",
    "Le pôle territorial",
    "La coopérative d'habitants",
    "L'association de quartier",
    "La région",
    "Le réseau des ressourceries",
]
_VERBS = ["accompagne", "finance", "anime", "met en relation", "héberge", "évalue", "forme"]
_OBJECTS = [
    "les porteurs de projets",
    "la filière bois",
    "les circuits courts alimentaires",
    "les ateliers de réemploi",
    "les chantiers d'insertion",
    "les tiers-lieux ruraux",
]
_PLACES = ["dans la Drôme", "à Roubaix", "en Bretagne", "dans le Jura", "à Grenoble", "en Ariège", "à Nantes"]


# Corpus -----------------------------------------------------------------------------------------


def _paragraph(rng: random.Random) -> str:
    sentences = [
        f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_PLACES)} "
        f"depuis {rng.randint(2001, 2013)}."
        for _ in range(rng.randint(2, 4))
    ]
    return " ".join(sentences)


def _write_note(folder: Path, number: int, rng: random.Random) -> None:
    paragraphs = [_paragraph(rng) for _ in range(rng.randint(1, 2))]
    text = f"Note de terrain {number}\n\n" + "\n\n".join(paragraphs) + "\n"
    (folder / f"note-{number:03d}.txt").write_text(text, encoding="utf-8")


def make_corpus(folder: Path, extra_files: int, seed: int) -> None:
    """The study and `extra_files` generated field notes in French."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(STUDY, folder / STUDY.name)
    shutil.copy(STUDY.with_name(STUDY.stem + ".meta.json"), folder / (STUDY.stem + ".meta.json"))
    rng = random.Random(seed)
    for number in range(1, extra_files + 1):
        _write_note(folder, number, rng)


def mutate_corpus(folder: Path, rng: random.Random) -> None:
    """A small change so that the next ingestion has work: edit two notes, add one, maybe delete one."""
    notes = sorted(folder.glob("note-*.txt"))
    for path in rng.sample(notes, k=min(2, len(notes))):
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("\n" + _paragraph(rng) + "\n")
    _write_note(folder, max(int(p.stem.split("-")[1]) for p in notes) + 1, rng)
    if len(notes) > 10 and rng.random() < 0.5:
        rng.choice(notes).unlink()


def corpus_state(folder: Path) -> dict[str, str]:
    """doc_id -> sha256 of every file the ingestion will index (all files here are valid)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.iterdir()
        if p.suffix == ".txt" and not p.name.startswith(".")
    }


# Processes --------------------------------------------------------------------------------------


def child_env(work: Path) -> dict[str, str]:
    """The environment of `ptce ingest`: index, corpus and audit log under `work`, local Chroma."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PTCE_")}
    env.update(
        PTCE_INDEX_DIR=str(work / "index"),
        PTCE_CORPUS_DIR=str(work / "corpus"),
        PTCE_AUDIT_DB=str(work / "audit.sqlite3"),
        PYTHONUNBUFFERED="1",
    )
    return env


def start_ingest(work: Path, rebuild: bool = False) -> subprocess.Popen[bytes]:
    """`ptce ingest` as a separate process (its own session, so a kill reaches no one else)."""
    command = [str(PTCE), "ingest", *(["--rebuild"] if rebuild else [])]
    with open(work / "ingest.log", "ab") as log:
        return subprocess.Popen(
            command, cwd=work, env=child_env(work), stdout=log, stderr=log, start_new_session=True, close_fds=True
        )


def _stagings(index_dir: Path) -> set[str]:
    return {p.name for p in index_dir.glob(".staging-*")}


def _staging_appeared(index_dir: Path, proc: subprocess.Popen[bytes], leftovers: set[str]) -> bool:
    """Wait until the run starts building (True) or exits first (False); a killed run's folder does not count."""
    while proc.poll() is None:
        if _stagings(index_dir) - leftovers:
            return True
        time.sleep(0.02)
    return False


@dataclass
class RunResult:
    """One ingestion: killed or not, the phase it had reached, its exit code."""

    killed: bool
    phase: str
    exit_code: int | None = None


def _generations(index_dir: Path) -> set[str]:
    return {p.name for p in index_dir.glob("gen-*")}


def run_and_kill(work: Path, rng: random.Random, *, rebuild: bool, from_staging: bool, window: float) -> RunResult:
    """Start an ingestion and SIGKILL it after a random delay in [0, window] (from start or from staging)."""
    index_dir = work / "index"
    before, leftovers, generations = current_generation(index_dir), _stagings(index_dir), _generations(index_dir)
    proc = start_ingest(work, rebuild)
    try:
        if from_staging and not _staging_appeared(index_dir, proc, leftovers):
            return RunResult(False, "completed", proc.wait())
        return RunResult(False, "completed", proc.wait(timeout=rng.uniform(0.0, window)))
    except subprocess.TimeoutExpired:
        pass
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # also on Ctrl-C of this script: no ingestion left behind
        proc.wait()
    after = current_generation(index_dir)
    if _stagings(index_dir) - leftovers:
        phase = "building"
    elif after != before:
        phase = "after-flip"
    elif _generations(index_dir) - generations:
        phase = "renamed-before-flip"
    else:
        phase = "starting"
    return RunResult(True, phase)


# Checks -----------------------------------------------------------------------------------------


def check_index(
    settings: Settings,
    embedder: SentenceEmbeddings,
    allowed_states: list[dict[str, str]],
    query: str = "soutenir l'emploi et les fonctions de coordination",
) -> list[str]:
    """Everything that is wrong with the current index (an empty list when it is whole)."""
    try:
        index = CorpusIndex(settings, embedder)
    except Exception as exc:
        return [f"index does not open: {type(exc).__name__}: {exc}"]
    problems: list[str] = []
    try:
        if (count := index.vectors.count()) != len(index.chunks):
            problems.append(f"{count} vectors for {len(index.chunks)} chunks")
        lexical_ids = list(index.lexical._chunk_ids)
        if sorted(lexical_ids) != sorted(index.by_id):
            problems.append(f"lexical index names {len(set(lexical_ids) - set(index.by_id))} unknown chunks")
        state = {doc_id: record.sha256 for doc_id, record in index.manifest.documents.items()}
        if state not in allowed_states:
            problems.append("manifest is neither the previous nor the new corpus (a half-applied update)")
        per_doc = Counter(c.doc_id for c in index.chunks)
        for doc_id, record in index.manifest.documents.items():
            if per_doc[doc_id] != record.n_chunks:
                problems.append(f"{doc_id}: {per_doc[doc_id]} chunks, manifest says {record.n_chunks}")
            text = index.document_text(doc_id)
            if any(text[c.start : c.end] != c.text for c in index.chunks_of(doc_id)):
                problems.append(f"{doc_id}: chunk offsets do not match the stored text")
        if set(per_doc) - set(index.manifest.documents):
            problems.append("chunks of documents missing from the manifest")
        hits = HybridSearcher(index, embedder, settings).search(query, k=5).hits
        if not hits or any(h.chunk.chunk_id not in index.by_id for h in hits):
            problems.append("search returns no hit or unknown chunks")
    except Exception as exc:  # a check that crashes is a finding, not a crash of the loop
        problems.append(f"check failed: {type(exc).__name__}: {exc}")
    finally:
        with contextlib.suppress(Exception):
            index.vectors.client.close()
    return problems


def litter(index_dir: Path) -> list[str]:
    """What a completed run should have cleaned: staging folders, orphan generations, temp pointers."""
    named = current_generation(index_dir)
    found = [p.name for p in index_dir.glob(".staging-*")]
    found += [p.name for p in index_dir.glob(f".{POINTER}.*.tmp")]
    generations = sorted(p.name for p in index_dir.glob("gen-*"))
    if len(generations) > 2 or named not in generations:
        found.append(f"generations {generations}, pointer {named}")
    return found


# The loop ---------------------------------------------------------------------------------------


@dataclass
class LoopReport:
    """Runs, kills and every problem found, for docs/reliability.md."""

    runs: int = 0
    kills: int = 0
    completed: int = 0
    phases: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly summary."""
        return {
            "runs": self.runs,
            "kills": self.kills,
            "completed": self.completed,
            "phases": dict(self.phases),
            "failures": self.failures,
            "seconds": round(self.seconds),
        }


def crash_loop(
    work: Path,
    embedder: SentenceEmbeddings,
    kills: int,
    seed: int,
    build_seconds: float,
    startup_seconds: float,
    max_runs: int | None = None,
    rebuild_every: int = 4,
    only_from_staging: bool = False,
    log: Callable[[str], None] = lambda line: None,
) -> LoopReport:
    """Kill ingestions at random until `kills` kills (or `max_runs` runs); an index must exist under `work`.

    Delays are drawn from [0, estimate]; the estimate of each kind of run (update or rebuild) narrows
    after a kill that came too late and widens after one that came early, so that most kills land in
    the build and swap phases.
    """
    settings = Settings(_env_file=None, index_dir=work / "index", corpus_dir=work / "corpus")  # type: ignore[call-arg]
    rng = random.Random(seed)
    estimate = {True: build_seconds, False: build_seconds / 2}  # rebuild? -> seconds to draw the delay from
    report = LoopReport()
    started = time.perf_counter()
    while report.kills < kills and report.runs < (max_runs or 2 * kills):
        number = report.runs + 1
        index = CorpusIndex(settings, embedder)
        previous = {d: r.sha256 for d, r in index.manifest.documents.items()}
        with contextlib.suppress(Exception):
            index.vectors.client.close()
        mutate_corpus(work / "corpus", rng)
        target = corpus_state(work / "corpus")
        rebuild = number % rebuild_every == 0
        from_staging = only_from_staging or rng.random() < 0.5
        window = estimate[rebuild] if from_staging else startup_seconds + estimate[rebuild]
        result = run_and_kill(work, rng, rebuild=rebuild, from_staging=from_staging, window=window)
        report.runs += 1
        report.phases[result.phase] += 1
        # Aim at the build and swap: narrow the window after a kill that came late, widen it after an early one.
        estimate[rebuild] *= 1.25 if result.phase in {"building", "starting"} else 0.7
        if result.killed:
            report.kills += 1
        else:
            report.completed += 1
            if result.exit_code != 0:
                report.failures.append(f"run {number}: exit code {result.exit_code} without a kill")
        problems = check_index(settings, embedder, [previous, target] if result.killed else [target])
        report.failures += [f"run {number} ({result.phase}, rebuild={rebuild}): {p}" for p in problems]
        elapsed = time.perf_counter() - started
        kind = "rebuild" if rebuild else "update"
        log(f"run {number:3d} {kind:8s}{result.phase:20s}{len(problems)} problems {elapsed:6.0f} s")
    # A final run must complete, leave no litter and index exactly the corpus.
    final = start_ingest(work).wait()
    if final != 0:
        report.failures.append(f"final rerun: exit code {final}")
    report.failures += [f"final rerun: {p}" for p in check_index(settings, embedder, [corpus_state(work / "corpus")])]
    report.failures += [f"final rerun left {item}" for item in litter(work / "index")]
    report.seconds = time.perf_counter() - started
    return report


def main() -> None:
    """Build the corpus and a first index, time one run, then kill `--runs` runs."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="Kills wanted (runs that finish first are extra).")
    parser.add_argument("--seed", type=int, default=2014)
    parser.add_argument("--extra-files", type=int, default=30)
    parser.add_argument("--work", type=Path, default=None, help="Folder to use (default: a temporary one).")
    args = parser.parse_args()
    from ptce_assistant.embeddings import get_embedder

    work = args.work or Path(tempfile.mkdtemp(prefix="ptce-crash-"))
    make_corpus(work / "corpus", args.extra_files, args.seed)
    t0 = time.perf_counter()
    proc = start_ingest(work)
    if not _staging_appeared(work / "index", proc, set()):
        sys.exit(f"first ingestion ended before building (exit {proc.wait()}); see {work / 'ingest.log'}")
    startup = time.perf_counter() - t0
    if proc.wait() != 0:
        sys.exit(f"first ingestion failed; see {work / 'ingest.log'}")
    window = time.perf_counter() - t0 - startup
    embedder = get_embedder(Settings(_env_file=None))  # type: ignore[call-arg]
    print(f"startup {startup:.1f} s, build {window:.1f} s; {args.runs} runs in {work}", flush=True)
    report = crash_loop(work, embedder, args.runs, args.seed, build_seconds=window, startup_seconds=startup, log=print)
    print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if report.failures else 0)


if __name__ == "__main__":
    main()
