"""A small French/English thesaurus of local-government and social-economy vocabulary.

Users ask with the words of their daily work ("la mairie", "des locaux", "local authorities"); the
study writes "collectivités", "immobilier et foncier". Expanding the query with the study's words
lets the lexical index meet them. Entries are general domain vocabulary, not phrasings of test cases.
"""

from __future__ import annotations

import re

from ptce_assistant.lexical import strip_accents

# pattern (accent-free, lower case) -> words of the study's register added to the query
SYNONYMS: dict[str, str] = {
    r"mairies?|communes?|municipal\w*|villes?|intercommunal\w*|agglomeration|metropoles?|epci"
    r"|departements?|regions?|conseil (regional|departemental)|elus?|local authorit\w*|local government"
    r"|councils?|municipalit\w*": "collectivités collectivité",
    r"locaux|batiments?|terrains?|bureaux|lieux|tiers[- ]lieux?|premises|buildings?|land|real estate"
    r"|property|espaces? de travail": "immobilier foncier équipement lieux mutualisation",
    r"argent|subventions?|financ\w*|budget\w*|money|funding|grants?|fonds": "financiers bailleur fonds soutiens",
    r"ess|economie sociale( et solidaire)?|social (and solidarity )?economy|solidarity economy": "ESS",
    r"coordinat\w*|animat\w*|salarie\w*|postes?|emplois?|jobs?|staff": "emploi coordination fonctions",
    r"services? (de la|municipaux|administratifs)|departments|silos?|guichets?|bureau a l.autre"
    r"|renvoy\w*": "services transversalité interservices orientation cloisonnements",
    r"campagnes?|villages?|ruraux|rural\w*|countryside": "rural ruralité milieu rural",
    r"expliqu\w*|sensibilis\w*|faire connaitre|informer|explain\w*|awareness|promot\w*"
    r"|habitants|grand public|public": "pédagogie diffuser valeurs méconnaissance",
    r"associations?|federations?|reseaux|networks?|umbrella": "têtes de réseaux acteurs concertations",
    r"long terme|durabl\w*|perenn\w*|sustain\w*|long[- ]term|plusieurs annees|years": "long terme pérennisation",
    r"exemples?|examples?|cas concrets?|which ptce": "voir les PTCE suivants",
    r"sigles?|acronymes?|signifi\w*|veut dire|stands? for|acronym|meaning": "Pôles Territoriaux Coopération",
    r"levers?|leviers?": "leviers",
    r"roles?|missions?|place": "rôle juste place",
    r"coop\w*|partenariats?|together|unir|ensemble": "coopérations coopération",
    r"plans?|contrats?|schemas?|strateg\w*|contracts?|planning": "cadres contractuels schémas contrats",
    r"emergence|lancer|demarrer|start\w*|naissance|creat\w*": "émergence repérage impulsion",
    r"difficult\w*|obstacles?|freins?|barriers?|challenges?|problem\w*": "freins difficultés",
    r"accompagn\w*|aider|aide|support\w*|help\w*|expertise|ingenier\w*|engineering": "accompagnement "
    r"ingénieries compétences",
    r"ptces?|poles? (territoriaux|de cooperation)": "PTCE",
    r"pouvoir|domin\w*|controle\w*|ingeren\w*|mainmise|trop de place|instrumentalis\w*|too much (power|control)"
    r"|dominant": "position dominante instrumentalisation juste place",
    r"plusieurs collectivites|entre collectivites|intercollectivit\w*|unir leurs efforts|ensemble": (
        "inter-collectivités"
    ),
}
_COMPILED = [(re.compile(rf"\b(?:{pattern})\b"), words) for pattern, words in SYNONYMS.items()]


def expansions(query: str) -> str:
    """The study's words for the domain terms a query uses (empty when none applies)."""
    plain = strip_accents(query.lower())
    extra: list[str] = []
    for pattern, words in _COMPILED:
        if pattern.search(plain) and words not in extra:
            extra.append(words)
    return " ".join(extra)
