"""The ``ketai`` console script end to end, as a user runs it (subprocesses, fresh KETAI_HOME)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from ketai.simulate import list_personas

PHASES = ["pre_session", "dosing", "peak", "integration", "complete"]


def run(
    ketai_bin: str, env: dict[str, str], *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [ketai_bin, *args], env=env, input=stdin, capture_output=True, timeout=180, check=False
    )


def test_demo_list_names_at_least_three_personas(ketai_bin: str, cli_env: dict[str, str]) -> None:
    result = run(ketai_bin, cli_env, "demo", "--list")
    assert result.returncode == 0, result.stderr
    names = result.stdout.decode().split()
    assert len(names) >= 3 and names == list_personas()


@pytest.mark.slow
@pytest.mark.parametrize("persona", list_personas())
def test_demo_json_shows_every_phase_in_order_with_reasons(
    ketai_bin: str, cli_env: dict[str, str], persona: str
) -> None:
    result = run(ketai_bin, cli_env, "demo", "--persona", persona, "--json")
    assert result.returncode == 0, result.stderr.decode()
    data = json.loads(result.stdout)
    assert data["phases"] == PHASES
    assert [(t["from"], t["to"]) for t in data["transitions"]] == list(zip(PHASES, PHASES[1:], strict=False))
    assert all(t["reason"] for t in data["transitions"])
    assert data["final_phase"] == "complete"

    sessions = json.loads(run(ketai_bin, cli_env, "sessions", "--json").stdout)
    assert [s["id"] for s in sessions] == [data["session_id"]]
    assert {"id", "phase", "highest_escalation"} <= set(sessions[0])

    transcript = json.loads(run(ketai_bin, cli_env, "transcript", data["session_id"], "--json").stdout)
    assert len(transcript["turns"]) == len(data["turns"])

    for fmt in ("md", "html", "json"):
        report = run(ketai_bin, cli_env, "report", data["session_id"], "--format", fmt)
        assert report.returncode == 0 and data["session_id"].encode() in report.stdout


def test_demo_unknown_persona_is_a_clear_error(ketai_bin: str, cli_env: dict[str, str]) -> None:
    result = run(ketai_bin, cli_env, "demo", "--persona", "nobody")
    assert result.returncode == 2
    assert b"no persona named 'nobody'" in result.stderr
    assert b"Traceback" not in result.stderr


def test_transcript_of_unknown_session_is_a_clear_error(ketai_bin: str, cli_env: dict[str, str]) -> None:
    result = run(ketai_bin, cli_env, "transcript", "s-missing")
    assert result.returncode == 2 and b"no session with id" in result.stderr


def test_machine_mermaid_comes_from_the_table(ketai_bin: str, cli_env: dict[str, str]) -> None:
    result = run(ketai_bin, cli_env, "machine", "--mermaid")
    assert result.returncode == 0
    text = result.stdout.decode()
    assert text.startswith("stateDiagram-v2") and "pre_session --> dosing: checklist_complete" in text


def _db_rows(home: Path, query: str) -> list[tuple[object, ...]]:
    db = home / "ketai.sqlite3"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute(query).fetchall()
        except sqlite3.OperationalError:
            return []


def _wait_for(predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the chat to store its turns")


@pytest.mark.slow
def test_chat_killed_mid_session_resumes_without_loss_or_repeats(
    ketai_bin: str, cli_env: dict[str, str], ketai_home: Path
) -> None:
    first_half = ["yes", "/companion hi, I'm Jamie", "BP 128 over 82", "no"]
    second_half = ["yes", "yes", "yes", "to let the doubt be there", "40", "5", "placed"]
    proc = subprocess.Popen([ketai_bin, "chat"], env=cli_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdin is not None
    for line in first_half:
        proc.stdin.write(line.encode() + b"\n")
        proc.stdin.flush()
    _wait_for(
        lambda: len(_db_rows(ketai_home, "SELECT seq FROM turns WHERE role != 'ketai' AND answered = 1")) == 4
    )
    proc.kill()  # SIGKILL: no cleanup, no flush
    proc.wait(timeout=10)

    (session_id,) = _db_rows(ketai_home, "SELECT id FROM sessions")[0]
    resumed = run(ketai_bin, cli_env, "chat", "--session", str(session_id),
                  stdin=("\n".join(second_half) + "\n").encode())  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr.decode()

    transcript = json.loads(run(ketai_bin, cli_env, "transcript", str(session_id), "--json").stdout)
    said = [t["text"] for t in transcript["turns"] if t["role"] in ("patient", "companion")]
    assert said == ["yes", "hi, I'm Jamie", "BP 128 over 82", "no", *second_half]
    seqs = [t["seq"] for t in transcript["turns"]]
    assert seqs == list(range(1, len(seqs) + 1))
    bp_events = [
        e for e in transcript["events"] if e["kind"] == "measurement" and e["data"]["kind"] == "bp_systolic"
    ]
    assert len(bp_events) == 1, "the blood pressure step must not repeat after the resume"
    transitions = [e["data"]["to_phase"] for e in transcript["events"] if e["kind"] == "transition"]
    assert transitions == ["dosing"]
    assert transcript["phase"] == "dosing"


def test_chat_survives_bad_stdin(ketai_bin: str, cli_env: dict[str, str], ketai_home: Path) -> None:
    bad = b"\n".join([b"", b"\xff\xfe\xfa not utf8", b"yes\x00\x1b[2J\x07", b"x" * 100_000, b"   "]) + b"\n"
    result = run(ketai_bin, cli_env, "chat", stdin=bad)
    assert result.returncode == 0, result.stderr.decode()
    assert b"Traceback" not in result.stderr
    (session_id,) = _db_rows(ketai_home, "SELECT id FROM sessions")[0]
    transcript = json.loads(run(ketai_bin, cli_env, "transcript", str(session_id), "--json").stdout)
    patient = [t for t in transcript["turns"] if t["role"] == "patient"]
    assert len(patient) == 3  # empty lines are answered but not stored
    assert all(t["answered"] for t in patient)
    assert any(len(t["text"]) >= 100_000 for t in patient)
