"""The fixed replies, in French and English: the abstention and the refusals (injection, greeting, empty)."""

from __future__ import annotations

ABSTENTION = {
    "fr": "Le corpus ne répond pas à cette question : l'étude du RTES sur les PTCE et le rôle des "
    "collectivités ne contient pas d'information sur ce point. Les passages les plus proches sont "
    "indiqués ci-dessous, à titre indicatif.",
    "en": "The corpus does not answer this question: the RTES study on PTCE and the role of local "
    "authorities contains no information on this point. The nearest passages are listed below for "
    "reference.",
}
REFUSAL = {
    "injection": {
        "fr": "Je réponds uniquement à partir de l'étude du RTES (2014) sur les PTCE et je ne modifie pas mes "
        "consignes. Le corpus ne répond pas à cette demande.",
        "en": "I only answer from the RTES study (2014) on PTCE and I do not change my instructions. The "
        "corpus does not answer this request.",
    },
    "chitchat": {
        "fr": "Bonjour ! Je réponds aux questions sur l'étude du RTES (2014) consacrée aux PTCE et au rôle des "
        "collectivités. Le corpus ne contient rien sur ce sujet ; essayez par exemple : « Quels sont "
        "les huit leviers identifiés par l'étude ? »",
        "en": "Hello! I answer questions about the RTES study (2014) on PTCE and the role of local "
        'authorities. The corpus says nothing on this; try for instance: "What are the eight levers '
        'the study identifies?"',
    },
    "off_topic": {
        "fr": "Je réponds seulement aux questions sur l'étude du RTES (2014) consacrée aux PTCE et au rôle des "
        "collectivités ; cette demande en sort, le corpus n'y répond pas. Essayez par exemple : « Que peut faire "
        "une collectivité pour l'émergence d'un PTCE ? »",
        "en": "I only answer questions about the RTES study (2014) on PTCE and the role of local authorities; "
        'this request is outside it and the corpus does not answer it. Try for instance: "What can a local '
        'authority do for a PTCE to emerge?"',
    },
    "empty": {"fr": "Posez une question sur l'étude du RTES.", "en": "Please ask a question about the study."},
}
