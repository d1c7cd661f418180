"""A turn's question analysed once: the record every step of an answer reads instead of the raw text.

Before it, the standalone query was expanded by the thesaurus and tokenised afresh by each step (the
search, the sentence scorer, the gate). The steps now receive this record, in the spirit of
chat-langchain's state passed through named steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from ptce_assistant.answering.evidence import question_terms
from ptce_assistant.config import Lang
from ptce_assistant.conversation import ListReference, StandaloneQuery
from ptce_assistant.retrieval import expanded_query


@dataclass(frozen=True)
class Question:
    """What is asked, in which language, resolved against the conversation, and its analysed terms."""

    text: str  # the user's own words: what they ask for (answer types) is read here
    lang: Lang
    standalone: StandaloneQuery  # the previous turns resolved: what is searched
    expanded: str  # the standalone text with the thesaurus's corpus words
    terms: tuple[str, ...]  # analysed terms of `expanded`: sentence scoring
    query_terms: tuple[str, ...]  # analysed terms of the standalone text: the gate's coverage, unknown words

    @property
    def list_item(self) -> ListReference | None:
        """The list item the conversation names ("et le suivant ?"), if any."""
        return self.standalone.list_item


def analyse(text: str, lang: Lang, standalone: StandaloneQuery, thesaurus: bool = True) -> Question:
    """The question record of a turn whose standalone query is already resolved (PTCE_THESAURUS: `thesaurus`)."""
    expanded = expanded_query(standalone.text, thesaurus)
    return Question(
        text=text,
        lang=lang,
        standalone=standalone,
        expanded=expanded,
        terms=tuple(question_terms(expanded)),
        query_terms=tuple(question_terms(standalone.text)),
    )
