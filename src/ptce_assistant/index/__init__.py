"""The persisted index: Chroma vectors, a French BM25 index and a manifest per generation, swapped atomically.

`records` (manifest, generation pointer, ingestion outcomes), `vectors` (Chroma adapter), `bm25` (BM25
adapter), `corpus` (the read side, `CorpusIndex`) and `ingestor` (the write side, `Ingestor`). The names the
facade and the surfaces use are importable from here.
"""

from ptce_assistant.index.corpus import CorpusIndex
from ptce_assistant.index.ingestor import Ingestor
from ptce_assistant.index.records import POINTER, IngestReport, ProgressCallback, current_generation

__all__ = ["POINTER", "CorpusIndex", "IngestReport", "Ingestor", "ProgressCallback", "current_generation"]
