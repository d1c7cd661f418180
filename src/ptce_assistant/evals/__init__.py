"""Evaluation sets: the case schema, loader, validator and retrieval hit rule."""
