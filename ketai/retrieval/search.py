"""Plain semantic search over the exercise library (``ketai exercises search``).

Unlike ``recommend`` this knows nothing about the patient: it ranks by similarity to the text,
optionally restricted to one dimension and to exercises that can start at or below a SUDS level.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ketai.errors import KetaiError
from ketai.models import Dimension, ExerciseKind
from ketai.retrieval.documents import dimension_key
from ketai.retrieval.ranking import ExerciseSource

# Words clinicians and patients use for a dimension, mapped to the enum value.
DIMENSION_ALIASES: dict[str, Dimension] = {
    "just_right": Dimension.SYMMETRY,
    "justright": Dimension.SYMMETRY,
    "ordering": Dimension.SYMMETRY,
    "order": Dimension.SYMMETRY,
    "religious": Dimension.SCRUPULOSITY,
    "religion": Dimension.SCRUPULOSITY,
    "moral": Dimension.SCRUPULOSITY,
    "responsibility": Dimension.HARM,
    "aggressive": Dimension.TABOO,
    "sexual": Dimension.TABOO,
    "unacceptable": Dimension.TABOO,
    "health": Dimension.SOMATIC,
    "body": Dimension.SOMATIC,
    "relationships": Dimension.RELATIONSHIP,
    "rocd": Dimension.RELATIONSHIP,
    "germs": Dimension.CONTAMINATION,
    "washing": Dimension.CONTAMINATION,
    "check": Dimension.CHECKING,
    "doubt": Dimension.UNCERTAINTY,
    "act": Dimension.DEFUSION,
    "compassion": Dimension.SELF_COMPASSION,
}


class SearchHit(BaseModel):
    """One search result; ``contract_dict`` is the JSON shape of ``ketai exercises search --json``."""

    id: str
    title: str
    score: float
    dimensions: list[Dimension]
    kind: ExerciseKind
    suds_min: int
    suds_max: int
    summary: str

    def contract_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "score": self.score,
            "dimensions": [dimension.value for dimension in self.dimensions],
        }


def parse_dimension(value: str) -> Dimension:
    """An enum value or a friendly alias (``just_right``, ``religious``...); a clear error otherwise."""
    key = value.strip().lower().replace("-", "_").replace(" ", "_")
    try:
        return Dimension(key)
    except ValueError:
        pass
    if key in DIMENSION_ALIASES:
        return DIMENSION_ALIASES[key]
    if key.rstrip("s") in {dimension.value for dimension in Dimension}:
        return Dimension(key.rstrip("s"))
    valid = ", ".join(dimension.value for dimension in Dimension)
    aliases = ", ".join(sorted(DIMENSION_ALIASES))
    raise KetaiError(f"unknown dimension {value!r}; use one of: {valid} (aliases: {aliases})")


def search_filter(dimension: Dimension | None, max_suds: int | None) -> dict[str, Any] | None:
    """A Chroma ``where`` clause for the optional filters."""
    clauses: list[dict[str, Any]] = []
    if dimension is not None:
        clauses.append({dimension_key(dimension): True})
    if max_suds is not None:
        clauses.append({"suds_min": {"$lte": max_suds}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def search(
    text: str,
    dimension: Dimension | str | None = None,
    max_suds: int | None = None,
    k: int = 5,
    *,
    index: ExerciseSource | None = None,
) -> list[SearchHit]:
    """The ``k`` exercises closest in meaning to ``text``.

    ``dimension`` keeps exercises serving that dimension; ``max_suds`` keeps exercises that can
    start at or below that distress (``suds_min <= max_suds``). Score is cosine similarity.
    """
    from ketai.retrieval.index import default_index

    if not text.strip():
        raise KetaiError("search text is empty")
    if max_suds is not None and not 0 <= max_suds <= 100:
        raise KetaiError(f"--max-suds must be between 0 and 100, got {max_suds}")
    if k < 1:
        raise KetaiError(f"--k must be at least 1, got {k}")
    chosen_dimension = parse_dimension(dimension) if isinstance(dimension, str) else dimension
    chosen = index if index is not None else default_index()
    similarities = chosen.similarities(text, search_filter(chosen_dimension, max_suds))
    exercises = chosen.exercises
    ordered = sorted(similarities.items(), key=lambda item: (-item[1], item[0]))[:k]
    hits: list[SearchHit] = []
    for exercise_id, similarity in ordered:
        exercise = exercises[exercise_id]
        hits.append(
            SearchHit(
                id=exercise.id,
                title=exercise.title,
                score=round(similarity, 4),
                dimensions=list(exercise.dimensions),
                kind=exercise.kind,
                suds_min=exercise.suds_min,
                suds_max=exercise.suds_max,
                summary=exercise.summary,
            )
        )
    return hits
