"""KETAI_CHROMA_MODE=http against a real ``chroma run`` server on 127.0.0.1 (started here, stopped after)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ketai.errors import BackendUnavailable
from ketai.retrieval.index import ExerciseIndex
from ketai.retrieval.langchain import ExerciseRetriever
from ketai.retrieval.search import search
from ketai.retrieval.store import ExerciseStore
from ketai.settings import Settings

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "fixtures" / "exercises"
CHROMA = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "chroma"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[int]:
    executable = CHROMA if CHROMA.exists() else shutil.which("chroma")
    if executable is None:
        pytest.skip("the `chroma` executable is not installed (expected at .venv/bin/chroma)")
    port = free_port()
    log = (tmp_path / "chroma.log").open("w")
    server = subprocess.Popen(
        [
            str(executable),
            "run",
            "--path",
            str(tmp_path / "server-data"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(
                    f"chroma run exited with {server.returncode}: {(tmp_path / 'chroma.log').read_text()}"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("chroma run did not answer its heartbeat within 60 s")
            time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()


def test_http_mode_syncs_and_searches(chroma_server: int, tmp_path: Path) -> None:
    library = tmp_path / "library"
    shutil.copytree(FIXTURES, library)
    settings = Settings(
        home=tmp_path / "home", chroma_mode="http", chroma_host="127.0.0.1", chroma_port=chroma_server
    )
    index = ExerciseIndex.open(settings, library, recheck_interval_s=0)
    first = index.sync()
    assert (first.added, first.unchanged) == (3, 0)
    hits = search("I keep asking if the front door is locked", k=2, index=index)
    assert hits[0].id == "fixture-door-delay"
    assert not (tmp_path / "home" / "chroma").exists()  # nothing was written locally

    # A second client (another process would do the same) sees the stored vectors: nothing re-embedded.
    again = ExerciseIndex.open(settings, library).sync()
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)

    door = library / "fixture-door-delay.md"
    door.write_text(door.read_text() + "\nWrite down what happened.\n")
    assert index.sync().updated == 1

    documents = ExerciseRetriever(index=index, k=1).invoke("touched the bin and washed again")
    assert documents[0].metadata["id"] == "fixture-bin-touch"


def test_http_mode_without_a_server_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, chroma_mode="http", chroma_host="127.0.0.1", chroma_port=free_port())
    with pytest.raises(BackendUnavailable, match=r"Chroma server at 127\.0\.0\.1"):
        ExerciseStore.from_settings(settings)
