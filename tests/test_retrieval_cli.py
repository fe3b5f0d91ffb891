"""``ketai exercises ...`` end to end: the real console script in a subprocess, a fresh KETAI_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ketai.content.exercises import load_library
from ketai.models import Dimension

pytestmark = pytest.mark.slow

CONTRACT_KEYS = {"id", "title", "score", "dimensions"}


# Loaded by the subprocess's Python at start-up (``sitecustomize`` on PYTHONPATH): any connection
# to a non-loopback address fails, so these runs prove the CLI works with the network unreachable.
OFFLINE_SITECUSTOMIZE = """
import socket

_real_connect = socket.socket.connect


def _loopback_only(self, address):
    host = address[0] if isinstance(address, tuple) else None
    if host is not None and host not in ("127.0.0.1", "::1", "localhost"):
        raise OSError(f"network unreachable (test guard): {address!r}")
    return _real_connect(self, address)


socket.socket.connect = _loopback_only
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    guard = tmp_path_factory.mktemp("offline-guard")
    (guard / "sitecustomize.py").write_text(OFFLINE_SITECUSTOMIZE)
    clean = {key: value for key, value in os.environ.items() if not key.startswith("KETAI_")}
    clean["KETAI_HOME"] = str(tmp_path_factory.mktemp("ketai-home"))
    clean["HOME"] = str(tmp_path_factory.mktemp("user-home"))  # no model caches from earlier runs
    clean["PYTHONPATH"] = str(guard)
    clean["PYTHONIOENCODING"] = "utf-8"
    return clean


def test_the_subprocess_network_guard_is_active(env: dict[str, str]) -> None:
    probe = "import socket; socket.create_connection(('192.0.2.1', 80), timeout=2)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode != 0 and "network unreachable (test guard)" in done.stderr


def ketai(ketai_bin: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ketai_bin, "exercises", *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_search_json_is_exactly_the_contract(ketai_bin: str, env: dict[str, str]) -> None:
    # First command on a fresh KETAI_HOME: builds the index lazily, then answers.
    done = ketai(ketai_bin, env, "search", "I keep asking my partner if the door is locked", "--json")
    assert done.returncode == 0, done.stderr
    hits = json.loads(done.stdout)
    assert isinstance(hits, list) and len(hits) == 5  # default k
    valid = {dimension.value for dimension in Dimension}
    for hit in hits:
        assert set(hit) == CONTRACT_KEYS
        assert isinstance(hit["id"], str) and isinstance(hit["title"], str)
        assert isinstance(hit["score"], float)
        assert isinstance(hit["dimensions"], list) and set(hit["dimensions"]) <= valid
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)
    assert any("checking" in hit["dimensions"] for hit in hits[:3])
    assert (Path(env["KETAI_HOME"]) / "chroma").is_dir()
    assert not (Path(env["HOME"]) / ".cache" / "chroma").exists()  # chroma's downloading default unused


def test_filters_and_aliases(ketai_bin: str, env: dict[str, str]) -> None:
    done = ketai(
        ketai_bin,
        env,
        "search",
        "I redo things until they feel right",
        "--dimension",
        "just_right",
        "--k",
        "2",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    hits = json.loads(done.stdout)
    assert len(hits) == 2 and all("symmetry" in hit["dimensions"] for hit in hits)

    done = ketai(ketai_bin, env, "search", "washing my hands", "--max-suds", "20", "--k", "10", "--json")
    assert done.returncode == 0, done.stderr
    starts = {exercise.id: exercise.suds_min for exercise in load_library()}
    hits = json.loads(done.stdout)
    assert hits and all(starts[hit["id"]] <= 20 for hit in hits)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "x", "--dimension", "germz"], "unknown dimension 'germz'"),
        (["search", "x", "--max-suds", "150"], "between 0 and 100"),
        (["search", "x", "--k", "0"], "at least 1"),
    ],
)
def test_bad_arguments_give_a_clear_error(
    ketai_bin: str, env: dict[str, str], args: list[str], message: str
) -> None:
    done = ketai(ketai_bin, env, *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_human_output_is_a_table(ketai_bin: str, env: dict[str, str]) -> None:
    done = ketai(ketai_bin, {**env, "COLUMNS": "220"}, "search", "I keep checking the stove", "--k", "3")
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stdout.splitlines() if "title" in line)
    assert all(column in header for column in ("id", "score", "dimensions", "SUDS"))
    assert "checking-stove-one-look" in done.stdout


def test_sync_reports_counts(ketai_bin: str, env: dict[str, str]) -> None:
    done = ketai(ketai_bin, env, "sync", "--json")
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)
    total = len(load_library())
    assert counts["added"] + counts["updated"] + counts["unchanged"] == total
    done = ketai(ketai_bin, env, "sync")
    assert done.returncode == 0 and f"unchanged {total}" in done.stdout.replace("\n", " ")


def test_lint_and_show(ketai_bin: str, env: dict[str, str], tmp_path: Path) -> None:
    done = ketai(ketai_bin, env, "lint", "--json")
    assert done.returncode == 0, done.stdout
    report = json.loads(done.stdout)
    assert report["problems"] == [] and report["exercises"] >= 80

    (tmp_path / "broken.md").write_text("---\nid: broken\ntitle: [unclosed\n---\nbody\n")
    done = ketai(ketai_bin, env, "lint", "--path", str(tmp_path), "--json")
    assert done.returncode == 1
    problems = json.loads(done.stdout)["problems"]
    assert len(problems) == 1 and problems[0]["field"] == "front_matter"

    done = ketai(ketai_bin, env, "show", "checking-stove-one-look")
    assert done.returncode == 0 and "One look at the stove" in done.stdout
    done = ketai(ketai_bin, env, "show", "no-such-exercise")
    assert done.returncode == 2 and "no exercise with id 'no-such-exercise'" in done.stderr
