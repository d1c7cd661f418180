"""Model set-up: weights converted, joined or exported once, at `ptce doctor --prepare` or first use.

Nothing of the set-up runs on the answering path; the embedder and the LLM backends load what it builds
(`loading.py` finds and loads a sentence-transformers model, on first use).
"""
