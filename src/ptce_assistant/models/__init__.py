"""Model set-up: weights converted, joined or exported once, at `ptce doctor --prepare` or first use.

Nothing here runs on the answering path; the embedder and the LLM backends load what these build.
"""
