"""The Chroma collection of integration exercises: open, sync by content hash, query.

``PersistentClient`` under ``$KETAI_HOME/chroma`` by default (one local process); ``HttpClient``
against a ``chroma run`` server when ``KETAI_CHROMA_MODE=http`` (the clinic side). Either way the
collection uses cosine space and the bundled, registered embedding function, so nothing is ever
downloaded, and telemetry is off.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings as ChromaSettings
from pydantic import BaseModel

from ketai.content.exercises import content_hash
from ketai.errors import BackendUnavailable
from ketai.models import Exercise
from ketai.retrieval.documents import HASH_SALT, ExerciseRecord, exercise_records
from ketai.retrieval.embedding_function import BundledMiniLMEmbeddingFunction
from ketai.settings import Settings

Where = dict[str, Any]


class SyncReport(BaseModel):
    """What one ``sync`` changed, counted in exercises (not records)."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    records: int = 0
    """Chroma records in the collection after the sync."""
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def make_client(settings: Settings) -> ClientAPI:
    """A Chroma client for ``settings`` (persistent folder or HTTP server), telemetry off."""
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_mode == "http":
        try:
            return chromadb.HttpClient(
                host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
            )
        except Exception as exc:  # chroma raises plain ValueError/httpx errors when the server is down
            raise BackendUnavailable(
                f"cannot reach the Chroma server at {settings.chroma_host}:{settings.chroma_port} "
                f"(KETAI_CHROMA_MODE=http): {exc}"
            ) from exc
    settings.chroma_path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)


class ExerciseStore:
    """One Chroma collection holding the exercise records (see ``ketai.retrieval.documents``)."""

    def __init__(self, client: ClientAPI, collection_name: str) -> None:
        self._client = client
        self._name = collection_name
        self._collection = self._open_collection()
        self._record_count: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ExerciseStore:
        chosen = settings or Settings()
        return cls(make_client(chosen), chosen.chroma_collection)

    def _open_collection(self) -> Collection:
        try:
            return self._client.get_or_create_collection(
                name=self._name,
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=BundledMiniLMEmbeddingFunction(),  # type: ignore[arg-type]
            )
        except Exception as exc:
            raise BackendUnavailable(f"cannot open Chroma collection {self._name!r}: {exc}") from exc

    @property
    def collection(self) -> Collection:
        return self._collection

    def count(self) -> int:
        """Records in the collection (cached; refreshed by ``sync`` and ``refresh_count``)."""
        if self._record_count is None:
            self._record_count = self._collection.count()
        return self._record_count

    def refresh_count(self) -> int:
        self._record_count = None
        return self.count()

    def stored_state(self) -> tuple[dict[str, str], dict[str, set[str]]]:
        """``(content hash by exercise id, record ids by exercise id)`` as stored now."""
        # Ids alone are cheap; metadata (~40 keys per record) is read only from each exercise's
        # full-text record, which carries the hash. Fetching all of it costs ~250 ms per sync.
        records: dict[str, set[str]] = defaultdict(set)
        for record_id in self._collection.get(include=[])["ids"]:
            records[exercise_id_of(record_id)].add(record_id)
        full = self._collection.get(where={"part": "full"}, include=["metadatas"])
        hashes: dict[str, str] = {}
        for record_id, metadata in zip(full["ids"], full["metadatas"] or [], strict=False):
            stored_hash = (metadata or {}).get("content_hash")
            if isinstance(stored_hash, str):
                hashes[exercise_id_of(record_id)] = stored_hash
        return hashes, dict(records)

    def stale_ids(self, exercises: Iterable[Exercise]) -> set[str]:
        """Exercise ids whose stored records are missing, outdated or no longer in the library."""
        hashes, _ = self.stored_state()
        wanted = {exercise.id: content_hash(exercise, HASH_SALT) for exercise in exercises}
        stale = {exercise_id for exercise_id, digest in wanted.items() if hashes.get(exercise_id) != digest}
        return stale | (set(hashes) - set(wanted))

    def sync(self, exercises: Iterable[Exercise]) -> SyncReport:
        """Make the collection match ``exercises``: embed only new or changed ones, delete removed ones."""
        started = time.perf_counter()
        hashes, stored_records = self.stored_state()
        report = SyncReport()
        to_write: list[ExerciseRecord] = []
        to_delete: list[str] = []
        wanted_ids: set[str] = set()
        for exercise in exercises:
            wanted_ids.add(exercise.id)
            digest = content_hash(exercise, HASH_SALT)
            records = exercise_records(exercise, digest)
            old_records = stored_records.get(exercise.id, set())
            if exercise.id not in hashes and not old_records:
                report.added += 1
            elif hashes.get(exercise.id) == digest and old_records == {r.record_id for r in records}:
                report.unchanged += 1
                continue
            else:
                report.updated += 1
                to_delete.extend(sorted(old_records - {r.record_id for r in records}))
            to_write.extend(records)
        for exercise_id in sorted(set(stored_records) - wanted_ids):
            report.removed += 1
            to_delete.extend(sorted(stored_records[exercise_id]))
        if to_delete:
            self._collection.delete(ids=to_delete)
        if to_write:
            self._collection.upsert(
                ids=[record.record_id for record in to_write],
                documents=[record.document for record in to_write],
                metadatas=[record.metadata for record in to_write],
            )
        report.records = self.refresh_count()
        report.seconds = time.perf_counter() - started
        return report

    def similarities(self, text: str, where: Where | None = None) -> dict[str, float]:
        """Similarity of ``text`` to every matching exercise (cosine, blended over its records)."""
        total = self.count()
        if total == 0:
            return {}
        # Distances only: fetching metadata for ~1000 records costs ~100 ms, the ids carry the exercise.
        result = self._collection.query(
            query_texts=[text], n_results=total, where=where, include=["distances"]
        )
        return best_similarity_by_exercise(result["ids"][0], (result["distances"] or [[]])[0])


def exercise_id_of(record_id: str) -> str:
    """``<exercise id>`` or ``<exercise id>#<part>`` -> the exercise id (``#`` never occurs in ids)."""
    return record_id.split("#", 1)[0]


# A patient's words often match one keyword phrase closely; but a short phrase can also match by
# chance, so the best single record is blended with the best whole-document record (full or head).
BEST_RECORD_WEIGHT = 0.7
DOCUMENT_WEIGHT = 1.0 - BEST_RECORD_WEIGHT


def best_similarity_by_exercise(
    record_ids: list[str], distances: list[float] | list[Any]
) -> dict[str, float]:
    """Per exercise: 0.7 x best similarity over all its records + 0.3 x best over its document records."""
    best_any: dict[str, float] = {}
    best_document: dict[str, float] = {}
    for record_id, distance in zip(record_ids, distances, strict=True):
        exercise_id, _, part = record_id.partition("#")
        similarity = 1.0 - float(distance)
        if similarity > best_any.get(exercise_id, -2.0):
            best_any[exercise_id] = similarity
        if part in ("", "head") and similarity > best_document.get(exercise_id, -2.0):
            best_document[exercise_id] = similarity
    return {
        exercise_id: BEST_RECORD_WEIGHT * score + DOCUMENT_WEIGHT * best_document.get(exercise_id, score)
        for exercise_id, score in best_any.items()
    }
