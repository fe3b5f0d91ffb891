"""The exercise library and its Chroma store, kept in step lazily.

``ExerciseIndex`` loads the library from its folder and syncs the store the first time it is
asked for similarities, and again only when a file in the folder changes (checked by name, size
and modification time, which costs a few ``stat`` calls per query). Stale means a content hash
differs, so an unchanged library never re-embeds anything.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from ketai.content.exercises import default_library_dir, exercise_files, load_library
from ketai.models import Exercise
from ketai.retrieval.store import ExerciseStore, SyncReport, Where
from ketai.settings import Settings

FolderSignature = tuple[tuple[str, int, int], ...]


def folder_signature(directory: Path) -> FolderSignature:
    signature = []
    for path in exercise_files(directory):
        stat = path.stat()
        signature.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(signature)


class ExerciseIndex:
    """Validated exercises by id plus the store that ranks them by meaning."""

    def __init__(
        self, store: ExerciseStore, library_dir: Path | None = None, recheck_interval_s: float = 1.0
    ) -> None:
        self.store = store
        self.library_dir = library_dir or default_library_dir()
        # Looking at the folder costs ~1.5 ms; a burst of queries shares one look per interval.
        self.recheck_interval_s = recheck_interval_s
        self._checked_at = float("-inf")
        self._exercises: dict[str, Exercise] = {}
        self._signature: FolderSignature | None = None
        self._lock = threading.Lock()
        self.last_sync: SyncReport | None = None

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        library_dir: Path | None = None,
        recheck_interval_s: float = 1.0,
    ) -> ExerciseIndex:
        return cls(ExerciseStore.from_settings(settings), library_dir, recheck_interval_s)

    def ensure_fresh(self) -> SyncReport | None:
        """Load the library and sync the store if the folder changed since the last check."""
        with self._lock:
            now = time.monotonic()
            if self._signature is not None and now - self._checked_at < self.recheck_interval_s:
                return None
            self._checked_at = now
            signature = folder_signature(self.library_dir)
            if signature == self._signature:
                return None
            exercises = load_library(self.library_dir)
            report: SyncReport | None = None
            if self.store.stale_ids(exercises):
                report = self.store.sync(exercises)
                self.last_sync = report
            else:
                self.store.refresh_count()
            self._exercises = {exercise.id: exercise for exercise in exercises}
            self._signature = signature
            return report

    def sync(self) -> SyncReport:
        """Load and sync now, whatever the folder signature says; returns the counts."""
        with self._lock:
            exercises = load_library(self.library_dir)
            report = self.store.sync(exercises)
            self.last_sync = report
            self._exercises = {exercise.id: exercise for exercise in exercises}
            self._signature = folder_signature(self.library_dir)
            self._checked_at = time.monotonic()
            return report

    @property
    def exercises(self) -> dict[str, Exercise]:
        self.ensure_fresh()
        return self._exercises

    def get(self, exercise_id: str) -> Exercise | None:
        return self.exercises.get(exercise_id)

    def similarities(self, text: str, where: Where | None = None) -> dict[str, float]:
        """Cosine similarity of ``text`` to each library exercise matching ``where``."""
        self.ensure_fresh()
        found = self.store.similarities(text, where)
        # An id the library no longer has (a server shared with another checkout) is ignored.
        return {exercise_id: score for exercise_id, score in found.items() if exercise_id in self._exercises}


_DEFAULT: dict[tuple[object, ...], ExerciseIndex] = {}
_DEFAULT_LOCK = threading.Lock()


def default_index(settings: Settings | None = None) -> ExerciseIndex:
    """One index per process and configuration (Chroma location, collection, library folder)."""
    chosen = settings or Settings()
    key = (
        chosen.chroma_mode,
        str(chosen.chroma_path),
        chosen.chroma_host,
        chosen.chroma_port,
        chosen.chroma_collection,
        str(default_library_dir()),
    )
    with _DEFAULT_LOCK:
        if key not in _DEFAULT:
            _DEFAULT[key] = ExerciseIndex.open(chosen)
        return _DEFAULT[key]
