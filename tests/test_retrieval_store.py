"""The Chroma exercise store: real Chroma on disk, the real bundled embedding model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ketai.content.exercises import load_library
from ketai.models import Dimension
from ketai.retrieval.documents import dimension_key
from ketai.retrieval.embedding_function import EMBEDDING_FUNCTION_NAME
from ketai.retrieval.index import ExerciseIndex
from ketai.retrieval.search import search
from ketai.retrieval.store import ExerciseStore
from ketai.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "exercises"


def settings_for(home: Path) -> Settings:
    return Settings(home=home, chroma_mode="persistent", chroma_collection="test-exercises")


@pytest.fixture
def library(tmp_path: Path) -> Path:
    target = tmp_path / "library"
    shutil.copytree(FIXTURES, target)
    return target


@pytest.fixture
def index(tmp_path: Path, library: Path) -> ExerciseIndex:
    return ExerciseIndex.open(settings_for(tmp_path / "home"), library, recheck_interval_s=0)


def test_sync_is_incremental(index: ExerciseIndex, library: Path) -> None:
    first = index.sync()
    assert (first.added, first.updated, first.unchanged, first.removed) == (3, 0, 0, 0)
    assert first.records > 3  # full text, head and keyword records per exercise

    again = index.sync()
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 3, 0)
    assert again.records == first.records

    door = library / "fixture-door-delay.md"
    door.write_text(door.read_text() + "\nThen write down what happened.\n")
    changed = index.sync()
    assert (changed.added, changed.updated, changed.unchanged, changed.removed) == (0, 1, 2, 0)

    (library / "fixture-bin-touch.md").unlink()
    removed = index.sync()
    assert (removed.added, removed.updated, removed.unchanged, removed.removed) == (0, 0, 2, 1)
    assert "fixture-bin-touch" not in index.store.stored_state()[0]
    assert not [hit for hit in search("touched the bin", k=3, index=index) if hit.id == "fixture-bin-touch"]


def test_keyword_change_replaces_old_records(index: ExerciseIndex, library: Path) -> None:
    index.sync()
    door = library / "fixture-door-delay.md"
    door.write_text(door.read_text().replace('"asking my partner"', '"photographing the lock"'))
    report = index.sync()
    assert report.updated == 1
    _, records = index.store.stored_state()
    stored = index.store.collection.get(ids=sorted(records["fixture-door-delay"]), include=["documents"])
    documents = stored["documents"] or []
    assert "photographing the lock" in documents
    assert "asking my partner" not in documents


def test_first_search_builds_the_index_lazily_and_notices_changes(
    index: ExerciseIndex, library: Path
) -> None:
    assert index.store.count() == 0
    hits = search("I keep asking if the front door is locked", k=1, index=index)
    assert [hit.id for hit in hits] == ["fixture-door-delay"]
    assert index.last_sync is not None and index.last_sync.added == 3

    assert index.ensure_fresh() is None  # nothing changed: no sync, no re-embedding
    label = library / "fixture-thought-label.md"
    label.write_text(label.read_text().replace("Label the thought", "Name the thought"))
    search("a horrible thought", k=1, index=index)
    assert index.last_sync is not None and index.last_sync.updated == 1


def test_a_second_index_on_the_same_folder_reuses_the_stored_vectors(tmp_path: Path, library: Path) -> None:
    settings = settings_for(tmp_path / "home")
    ExerciseIndex.open(settings, library).sync()
    reopened = ExerciseIndex.open(settings, library)
    assert reopened.ensure_fresh() is None  # every hash matches: nothing re-embedded
    assert set(reopened.exercises) == {"fixture-bin-touch", "fixture-door-delay", "fixture-thought-label"}


def test_metadata_filters(index: ExerciseIndex) -> None:
    index.sync()
    contamination = index.similarities("checking the lock", {dimension_key(Dimension.CONTAMINATION): True})
    assert set(contamination) == {"fixture-bin-touch"}
    low_start = index.similarities("anything", {"suds_min": {"$lte": 20}})
    assert set(low_start) == {"fixture-door-delay", "fixture-thought-label"}
    got = index.store.collection.get(ids=["fixture-bin-touch"], include=["metadatas"])
    metadata = (got["metadatas"] or [{}])[0]
    assert metadata["kind"] == "exposure_planning"
    assert metadata["ci_not_while_sedated"] is True and metadata["ci_needs_companion"] is False
    assert metadata["max_post_session_suds"] == 60
    assert metadata["dimensions"] == "contamination"


def test_cosine_space_and_registered_embedding_function(index: ExerciseIndex) -> None:
    index.sync()
    configuration = index.store.collection.configuration
    assert configuration["hnsw"] is not None and configuration["hnsw"]["space"] == "cosine"
    function = configuration["embedding_function"]
    assert function is not None and function.name() == EMBEDDING_FUNCTION_NAME
    # A query equal to a keyword phrase matches that record exactly (cosine distance 0).
    result = index.store.collection.query(query_texts=["touched the bin"], n_results=1, include=["distances"])
    assert result["ids"][0] == ["fixture-bin-touch#kw0"]
    assert (result["distances"] or [[1.0]])[0][0] == pytest.approx(0.0, abs=1e-3)
    similarities = index.similarities("touched the bin")
    assert max(similarities, key=similarities.__getitem__) == "fixture-bin-touch"


REOPEN_SCRIPT = textwrap.dedent(
    """
    import json, socket, sys

    real_connect = socket.socket.connect

    def loopback_only(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") and "/" not in host:
            raise OSError(f"network disabled in this test: {address!r}")
        return real_connect(self, address)

    socket.socket.connect = loopback_only
    socket.create_connection = lambda *a, **k: (_ for _ in ()).throw(OSError("network disabled"))

    import chromadb
    from chromadb.config import Settings
    import ketai.retrieval.embedding_function  # registers the function by name

    client = chromadb.PersistentClient(path=sys.argv[1], settings=Settings(anonymized_telemetry=False))
    collection = client.get_collection("test-exercises")  # no embedding function passed
    result = collection.query(query_texts=["is the front door locked"], n_results=1)
    print(json.dumps({
        "function": collection.configuration["embedding_function"].name(),
        "top": result["metadatas"][0][0]["exercise_id"],
    }))
    """
)


def test_reopening_the_persisted_store_in_a_new_process_works_offline(tmp_path: Path, library: Path) -> None:
    settings = settings_for(tmp_path / "home")
    ExerciseIndex.open(settings, library).sync()
    fake_home = tmp_path / "user-home"
    fake_home.mkdir()
    env = {**os.environ, "HOME": str(fake_home), "HF_HUB_OFFLINE": "1"}
    completed = subprocess.run(
        [sys.executable, "-c", REOPEN_SCRIPT, str(settings.chroma_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    answer = json.loads(completed.stdout.strip().splitlines()[-1])
    assert answer == {"function": EMBEDDING_FUNCTION_NAME, "top": "fixture-door-delay"}
    # chroma's default function would have tried to put its model here
    assert not (fake_home / ".cache" / "chroma").exists()


def test_store_counts_are_per_exercise_not_per_record(tmp_path: Path) -> None:
    store = ExerciseStore.from_settings(settings_for(tmp_path / "home"))
    exercises = load_library(FIXTURES)
    report = store.sync(exercises)
    assert report.added == 3 and report.records > 3
    assert store.stale_ids(exercises) == set()
    assert store.stale_ids(exercises[:2]) == {exercises[2].id}
