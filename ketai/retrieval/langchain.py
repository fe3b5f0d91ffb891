"""A LangChain retriever over the same exercise store (for the LLM responder's chains).

It returns one ``Document`` per exercise: the page content is what an LLM may paraphrase (title,
summary, instructions); the metadata carries the id, title, score and dimensions so the
transcript can record which exercise was offered.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from ketai.models import Dimension
from ketai.retrieval.ranking import ExerciseSource
from ketai.retrieval.search import search


class ExerciseRetriever(BaseRetriever):
    """``invoke(text)`` -> the ``k`` closest exercises as Documents (same ranking as ``search``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any = None
    """An ``ExerciseIndex`` (or anything with ``exercises`` and ``similarities``); None: the default index."""
    k: int = Field(default=3, ge=1)
    dimension: Dimension | None = None
    max_suds: int | None = Field(default=None, ge=0, le=100)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        from ketai.retrieval.index import default_index

        source: ExerciseSource = self.index if self.index is not None else default_index()
        hits = search(query, dimension=self.dimension, max_suds=self.max_suds, k=self.k, index=source)
        exercises = source.exercises
        documents: list[Document] = []
        for hit in hits:
            exercise = exercises.get(hit.id)
            body = exercise.body if exercise is not None else ""
            documents.append(
                Document(
                    id=hit.id,
                    page_content=f"{hit.title}\n{hit.summary}\n\n{body}".strip(),
                    metadata={
                        "id": hit.id,
                        "exercise_id": hit.id,
                        "title": hit.title,
                        "score": hit.score,
                        "dimensions": [dimension.value for dimension in hit.dimensions],
                        "kind": hit.kind.value,
                        "suds_min": hit.suds_min,
                        "suds_max": hit.suds_max,
                    },
                )
            )
        return documents
