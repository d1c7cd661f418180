"""A synthetic French corpus of about N chunks, generated reproducibly, with the study embedded in it.

Distractor documents are Markdown reports whose paragraphs recombine clauses of the study's sentences
(so they share its vocabulary: PTCE, collectivités, ESS...) with sentences of Faker's fr_FR providers
(Eduscol word list, company slogans, French towns, regions and jobs). No study sentence is copied
whole. Requires the `bench` extra (`pip install -e '.[bench]'`: faker, pinned for reproducibility).
"""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

from harness import BUNDLED_CORPUS, WORK_DIR

from ptce_assistant.chunking import chunk_document
from ptce_assistant.documents import load_document
from ptce_assistant.text import sentence_spans

STUDY = BUNDLED_CORPUS / "rtes-2014-ptce-role-des-collectivites.txt"
GENERATOR_VERSION = "1"
PARAGRAPHS_PER_DOCUMENT = 100
_CLAUSE = re.compile(r"\s*[,;:()]\s*")
_TEMPLATES = (
    "À {city}, {company} réunit des {job}s et des élus autour d'un projet de {word}.",
    "{slogan} : c'est l'ambition affichée par {company} en {region}.",
    "La communauté de communes de {city} finance depuis {year} une étude sur {word} et {word2}.",
    "Les acteurs de l'ESS de {region} demandent à la collectivité un appui pour {word}.",
    "Selon le rapport de {company}, {count} structures de {city} coopèrent désormais sur {word}.",
)


def _study_clauses() -> list[str]:
    """Clauses of the study's sentences (cut at commas, colons, semicolons, brackets), long enough to read."""
    lines = [line.strip(" •\t") for line in load_document(STUDY, BUNDLED_CORPUS).text.splitlines()]
    sentences = [line[s:e] for line in lines for s, e in sentence_spans(line)]
    return [c.strip(" .") for s in sentences for c in _CLAUSE.split(s) if len(c.split()) >= 4]


class Generator:
    """Seeded paragraphs and documents (same seed and faker version: same corpus)."""

    def __init__(self, seed: int) -> None:
        from faker import Faker

        self.rng = random.Random(seed)
        self.fake = Faker("fr_FR")
        self.fake.seed_instance(seed)
        self.clauses = _study_clauses()

    def sentence(self) -> str:
        """A recombined study sentence, a templated one, or Faker prose."""
        draw = self.rng.random()
        fake = self.fake
        if draw < 0.4:
            first, second = self.rng.sample(self.clauses, 2)
            return f"{first[0].upper()}{first[1:]}, {second[0].lower()}{second[1:]} à {fake.city()}."
        if draw < 0.7:
            return self.rng.choice(_TEMPLATES).format(
                city=fake.city(),
                company=fake.company(),
                job=fake.job().split(" ")[0],
                word=fake.word(),
                word2=fake.word(),
                slogan=fake.catch_phrase(),
                region=fake.region(),
                year=self.rng.randint(2005, 2024),
                count=self.rng.randint(3, 60),
            )
        return fake.sentence(nb_words=self.rng.randint(10, 22))

    def paragraph(self) -> str:
        """Three to five sentences: one chunk of 200-600 characters for the project's chunker."""
        return " ".join(self.sentence() for _ in range(self.rng.randint(3, 5)))

    def document(self, number: int) -> str:
        """A Markdown report with sections of paragraphs."""
        lines = [f"# Rapport {number:05d} : {self.fake.catch_phrase()}", ""]
        for i in range(PARAGRAPHS_PER_DOCUMENT):
            if i % 10 == 0:
                lines += [f"## {self.fake.catch_phrase()} ({self.fake.region()})", ""]
            lines += [self.paragraph(), ""]
        return "\n".join(lines)


def _count_chunks(path: Path, root: Path) -> int:
    return len(chunk_document(load_document(path, root)))


def ensure_corpus(chunks: int, seed: int = 2014) -> Path:
    """The folder of a corpus of about `chunks` chunks (study included), generated once under benchmarks/work/."""
    import faker

    folder = WORK_DIR / f"synthetic-{chunks}-seed{seed}" / "corpus"
    stamp = folder / ".generated"
    signature = f"generator={GENERATOR_VERSION} faker={faker.VERSION} seed={seed} chunks={chunks}"
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == signature:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for source in BUNDLED_CORPUS.glob(f"{STUDY.stem}*"):
        shutil.copyfile(source, folder / source.name)  # the study and its metadata sidecar
    total = _count_chunks(folder / STUDY.name, folder)
    generator = Generator(seed)
    number = 0
    while total < chunks:
        number += 1
        path = folder / f"rapport-{number:05d}.md"
        text = generator.document(number)
        path.write_text(text, encoding="utf-8")
        count = _count_chunks(path, folder)
        if total + count > chunks:  # trim the last report to land on the target
            paragraphs = text.split("\n\n")
            while total + count > chunks and len(paragraphs) > 2:
                paragraphs.pop()
                path.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
                count = _count_chunks(path, folder)
        total += count
    stamp.write_text(signature, encoding="utf-8")
    return folder


if __name__ == "__main__":
    import sys

    print(ensure_corpus(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
