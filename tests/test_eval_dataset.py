"""The committed evaluation sets, their validator and the retrieval hit rule."""

from __future__ import annotations

import json
import random
from collections import Counter
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import pytest

from ptce_assistant.errors import PtceError
from ptce_assistant.evals.dataset import EvalCase, covers, load_cases, validate_cases

ROOT = Path(__file__).resolve().parents[1]
CORPUS_FILE = ROOT / "corpus" / "rtes-2014-ptce-role-des-collectivites.txt"
DEV = ROOT / "evals" / "dev.jsonl"
HELDOUT = ROOT / "evals" / "heldout.jsonl"

# Slug -> heading of the study (the intro is the unheaded paragraph after the title).
SECTIONS = {
    "intro": "Le Réseau des collectivités Territoriales",
    "lien-developpement-local": "Un lien fort entre PTCE et développement local",
    "role-collectivites": "Rôle des collectivités",
    "transversalite-rural": "Transversalité, mutualisation, perspective et spécificité en rural",
    "leviers": "8 leviers au développement des PTCE ont été identifiés",
}
UNANSWERABLE_KINDS = {"near-miss", "off-topic", "injection"}


@pytest.fixture(scope="module")
def corpus() -> dict[str, str]:
    return {CORPUS_FILE.stem: CORPUS_FILE.read_text(encoding="utf-8")}


@pytest.fixture(scope="module")
def splits() -> dict[str, list[EvalCase]]:
    return {"dev": load_cases(DEV), "heldout": load_cases(HELDOUT)}


def _tag_counts(cases: list[EvalCase]) -> Counter[str]:
    return Counter(tag for case in cases for tag in case.tags)


# --- the committed sets -------------------------------------------------------------------------


@pytest.mark.parametrize("path", [DEV, HELDOUT], ids=["dev", "heldout"])
def test_committed_set_has_no_problem(path: Path, corpus: dict[str, str]) -> None:
    assert [str(problem) for problem in validate_cases(path, corpus)] == []


def test_section_headings_exist(corpus: dict[str, str]) -> None:
    text = corpus[CORPUS_FILE.stem]
    assert all(heading in text for heading in SECTIONS.values())


def test_sizes(splits: dict[str, list[EvalCase]]) -> None:
    dev, heldout = splits["dev"], splits["heldout"]
    assert len(dev) + len(heldout) >= 90
    assert len(heldout) >= 25
    assert sum(not case.answerable for case in dev + heldout) >= 20
    assert not {case.id for case in dev} & {case.id for case in heldout}


def test_no_question_shared_between_splits(splits: dict[str, list[EvalCase]]) -> None:
    dev_questions = {case.question.casefold() for case in splits["dev"]}
    assert not [case.id for case in splits["heldout"] if case.question.casefold() in dev_questions]


@pytest.mark.parametrize("split", ["dev", "heldout"])
def test_each_split_has_the_full_mix(split: str, splits: dict[str, list[EvalCase]]) -> None:
    cases = splits[split]
    tags = _tag_counts(cases)
    for lever in range(1, 9):
        assert tags[f"lever:{lever}"] >= 1, f"lever:{lever} missing in {split}"
    for slug in SECTIONS:
        assert tags[f"section:{slug}"] >= 1, f"section:{slug} missing in {split}"
    for tag in ("paraphrase", "followup", "en", "out-of-corpus", *UNANSWERABLE_KINDS):
        assert tags[tag] >= 1, f"{tag} missing in {split}"
    assert any(case.answerable and case.lang == "en" for case in cases)
    assert any(case.answerable and case.history for case in cases)


def test_tags_are_well_formed(splits: dict[str, list[EvalCase]]) -> None:
    known = {"paraphrase", "followup", "en", "list", "out-of-corpus", *UNANSWERABLE_KINDS}
    for case in splits["dev"] + splits["heldout"]:
        for tag in case.tags:
            if tag.startswith("section:"):
                assert tag.removeprefix("section:") in SECTIONS, (case.id, tag)
            elif tag.startswith("lever:"):
                assert tag.removeprefix("lever:") in {str(n) for n in range(1, 9)}, (case.id, tag)
            elif tag.startswith("from-issue-"):
                assert tag.removeprefix("from-issue-").isdigit(), (case.id, tag)  # provenance: written for an issue
            else:
                assert tag in known, (case.id, tag)
        if case.answerable:
            assert any(tag.startswith("section:") for tag in case.tags), case.id
        else:
            assert len(UNANSWERABLE_KINDS & set(case.tags)) == 1, case.id


# --- the validator on a crafted bad file --------------------------------------------------------


def _case(**overrides: Any) -> str:
    case: dict[str, Any] = {
        "id": "ok",
        "question": "Quel est le septième levier ?",
        "history": [],
        "answerable": True,
        "expected_quotes": ["Soutenir l'emploi et les fonctions de coordination"],
        "tags": ["lever:7"],
        "lang": "fr",
    }
    case.update(overrides)
    return json.dumps(case, ensure_ascii=False)


def test_validator_reports_line_and_reason(tmp_path: Path, corpus: dict[str, str]) -> None:
    lines = [
        _case(id="good"),  # 1
        "{not json",  # 2
        _case(id="curly", expected_quotes=["Soutenir l’emploi et les fonctions de coordination"]),  # 3
        _case(id="good"),  # 4
        _case(id="no-quotes", expected_quotes=[]),  # 5
        _case(id="quotes", answerable=False, tags=["out-of-corpus", "near-miss"]),  # 6
        _case(id="de", lang="de"),  # 7
        _case(id="blank", question="   "),  # 8
        _case(id="system", history=[{"role": "system", "content": "x"}], tags=["followup"]),  # 9
        "",  # 10: blank lines are skipped
        _case(id="short", expected_quotes=["Soutenir l'emploi"]),  # 11
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    problems = validate_cases(path, corpus)
    found = [(problem.line, problem.case_id, problem.reason) for problem in problems]

    def reasons(line: int) -> list[str]:
        return [reason for number, _, reason in found if number == line]

    assert {number for number, _, _ in found} == {2, 3, 4, 5, 6, 7, 8, 9, 11}
    assert reasons(2)[0].startswith("invalid JSON")
    assert len(reasons(3)) == 1
    assert "quote 1 is not verbatim" in reasons(3)[0]
    assert "closest in rtes-2014-ptce-role-des-collectivites:" in reasons(3)[0]
    assert "Soutenir l'emploi et les fonctions de coordination" in reasons(3)[0]
    assert reasons(4) == ["duplicate id (first used on line 1)"]
    assert reasons(5) == ["answerable case without expected_quotes"]
    assert reasons(6) == ["unanswerable case with expected_quotes"]
    assert reasons(7) == ["lang 'de' is not 'fr' or 'en'"]
    assert reasons(8) == ["empty question"]
    assert reasons(9) == ["history turn 1 has role 'system', expected 'user' or 'assistant'"]
    assert reasons(11) == ['quote 1 has 17 chars, expected 40-250: "Soutenir l\'emploi"']
    assert {case_id for number, case_id, _ in found if number > 2} >= {"curly", "good", "de", "system"}


def test_validator_checks_history_shape_and_tags(tmp_path: Path, corpus: dict[str, str]) -> None:
    lines = [
        _case(id="ends-user", history=[{"role": "user", "content": "Les leviers ?"}], tags=["followup"]),
        _case(
            id="no-followup-tag",
            history=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
        ),
        _case(id="en-untagged", lang="en"),
        _case(id="ooc-untagged", answerable=False, expected_quotes=[]),
    ]
    path = tmp_path / "tags.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    found = {(problem.line, problem.reason) for problem in validate_cases(path, corpus)}
    assert found == {
        (1, "history must end with an assistant turn"),
        (2, "tag 'followup' must be set exactly when there is a history"),
        (3, "tag 'en' must be set exactly when lang is 'en'"),
        (4, "tag 'out-of-corpus' must be set exactly when the case is unanswerable"),
    }


def test_load_cases_raises_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(_case(id="a") + "\n\n" + _case(id="b", lang="es") + "\n", encoding="utf-8")
    with pytest.raises(PtceError, match=r"cases\.jsonl:3: lang 'es' is not 'fr' or 'en'"):
        load_cases(path)
    path.write_text("[1, 2\n", encoding="utf-8")
    with pytest.raises(PtceError, match=r"cases\.jsonl:1: invalid JSON"):
        load_cases(path)
    path.write_text(_case(answerable="yes", extra=1) + "\n", encoding="utf-8")
    with pytest.raises(PtceError, match=r"cases\.jsonl:1: answerable: .*; unknown field 'extra'"):
        load_cases(path)
    with pytest.raises(PtceError, match="cannot read"):
        load_cases(tmp_path / "missing.jsonl")


def test_load_cases_reads_history(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    history = [{"role": "user", "content": "Les leviers ?"}, {"role": "assistant", "content": "Huit."}]
    path.write_text(_case(history=history, tags=["followup"]), encoding="utf-8")
    (case,) = load_cases(path)
    assert [turn.role for turn in case.history] == ["user", "assistant"]


# --- the hit rule -------------------------------------------------------------------------------


def test_covers_whole_quote() -> None:
    assert covers("Avant. Soutenir l'emploi dans le long terme. Après.", "Soutenir l'emploi dans le long terme.")


def test_covers_exactly_half() -> None:
    assert covers("xx abcde yy", "abcdefghij")  # 5 of 10 characters
    assert covers("xx fghij yy", "abcdefghij")


def test_covers_less_than_half() -> None:
    assert not covers("xx abcd yy", "abcdefghij")  # 4 of 10
    assert not covers("abc fgh", "abcdefghij")  # two short runs do not add up
    assert not covers("abcde", "abcdefghijk")  # 5 of 11 is under half


def test_covers_ignores_whitespace_differences() -> None:
    chunk = "les freins   témoignés\nrelatifs à la faible\u00a0densité des acteurs"
    assert covers(chunk, "  les freins témoignés relatifs à la faible densité des acteurs\n")


def test_covers_empty_quote_is_not_a_hit() -> None:
    assert not covers("anything", "   ")


def test_covers_a_real_chunk_with_a_neighbouring_quote(corpus: dict[str, str]) -> None:
    text = corpus[CORPUS_FILE.stem]
    lever_7 = next(line for line in text.splitlines() if "Soutenir l'emploi" in line)
    lever_8 = next(line for line in text.splitlines() if "Accompagner les démarches" in line)
    quote = "Soutenir l'emploi et les fonctions de coordination et de recherche et développement"
    assert covers(lever_7, quote)
    assert not covers(lever_8, quote)


def test_covers_agrees_with_longest_common_substring() -> None:
    rng = random.Random(2014)
    for _ in range(500):
        quote = "".join(rng.choice("ab c") for _ in range(rng.randint(1, 12)))
        text = "".join(rng.choice("ab c") for _ in range(rng.randint(0, 20)))
        needle, haystack = " ".join(quote.split()), " ".join(text.split())
        if not needle:
            continue
        match = SequenceMatcher(None, needle, haystack, autojunk=False).find_longest_match()
        assert covers(text, quote) == (2 * match.size >= len(needle)), (text, quote)
