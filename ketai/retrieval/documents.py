"""How an exercise becomes Chroma records: document texts, ids and flat metadata.

Each exercise is stored as a few records that share its ``exercise_id``:

* ``<id>`` -- the full document: title, summary, keywords, then the body;
* ``<id>#head`` -- title, summary and keywords only (the long body otherwise dilutes them,
  and the model reads at most 256 tokens);
* ``<id>#kw<n>`` -- one record per keyword phrase ("things a patient might say").

A query's similarity to an exercise is its best match over these records. Metadata is flat
(Chroma has no nested values): booleans ``dim_<dimension>``, ``timing_<timing>`` and ``ci_<flag>``
make ``where`` filters simple; ``dimensions`` holds the same list as one comma-joined string.
"""

from __future__ import annotations

from dataclasses import dataclass

from ketai.embeddings import MODEL_ID
from ketai.models import Contraindication, Dimension, Exercise, ExerciseTiming

# Bump when the texts or metadata written below change: every stored hash goes stale and the
# next sync re-embeds the whole library.
INDEX_FORMAT = "3"
HASH_SALT = f"{INDEX_FORMAT}:{MODEL_ID}"
NO_LIMIT = -1  # stands for "None" in integer metadata (Chroma stores no nulls)

MetadataValue = str | int | float | bool


@dataclass(frozen=True)
class ExerciseRecord:
    record_id: str
    document: str
    metadata: dict[str, MetadataValue]


def dimension_key(dimension: Dimension) -> str:
    return f"dim_{dimension.value}"


def full_document(exercise: Exercise) -> str:
    keywords = "; ".join(exercise.keywords)
    return "\n".join(part for part in (exercise.title, exercise.summary, keywords, exercise.body) if part)


def head_document(exercise: Exercise) -> str:
    keywords = "; ".join(exercise.keywords)
    return ". ".join(part for part in (exercise.title, exercise.summary, keywords) if part)


def exercise_metadata(exercise: Exercise, content_hash: str) -> dict[str, MetadataValue]:
    metadata: dict[str, MetadataValue] = {
        "exercise_id": exercise.id,
        "title": exercise.title,
        "kind": exercise.kind.value,
        "dimensions": ",".join(dimension.value for dimension in exercise.dimensions),
        "suds_min": exercise.suds_min,
        "suds_max": exercise.suds_max,
        "duration_minutes": exercise.duration_minutes,
        "max_post_session_suds": (
            exercise.max_post_session_suds if exercise.max_post_session_suds is not None else NO_LIMIT
        ),
        "content_hash": content_hash,
    }
    for dimension in Dimension:
        metadata[dimension_key(dimension)] = dimension in exercise.dimensions
    for timing in ExerciseTiming:
        metadata[f"timing_{timing.value}"] = timing in exercise.timing
    for flag in Contraindication:
        metadata[f"ci_{flag.value}"] = flag in exercise.contraindications
    return metadata


def exercise_records(exercise: Exercise, content_hash: str) -> list[ExerciseRecord]:
    base = exercise_metadata(exercise, content_hash)
    records = [
        ExerciseRecord(exercise.id, full_document(exercise), {**base, "part": "full"}),
        ExerciseRecord(f"{exercise.id}#head", head_document(exercise), {**base, "part": "head"}),
    ]
    seen: set[str] = set()
    for index, keyword in enumerate(exercise.keywords):
        phrase = keyword.strip()
        if not phrase or phrase.lower() in seen:
            continue
        seen.add(phrase.lower())
        records.append(ExerciseRecord(f"{exercise.id}#kw{index}", phrase, {**base, "part": "keyword"}))
    return records
