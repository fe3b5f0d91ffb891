"""``ketai screen`` end to end through the console script, including hostile input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def run(ketai_bin: str, env: dict[str, str], args: list[str], data: bytes) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [ketai_bin, "screen", *args], input=data, capture_output=True, env=env, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]


def test_input_contract_and_hostile_lines(ketai_bin: str, cli_env: dict[str, str], tmp_path: Path) -> None:
    lines = [
        json.dumps({"text": "I want to kill myself tonight", "phase": None}).encode(),
        json.dumps({"text": "am I dead?", "phase": "peak"}).encode(),
        json.dumps({"text": "am I dead?"}).encode(),
        b"",
        b"   ",
        b"plain text, not json: I can't breathe",
        b"\xff\xfe\x00binary\x80\x81",
        "control \x01\x02\x1b[31m chars and emoji \U0001f600".encode(),
        json.dumps({"text": "x" * 100_000 + " I want to die"}).encode(),
        b'{"text": 42}',
        b"[1, 2, 3]",
        json.dumps({"text": "hello", "phase": "moon", "role": "martian"}).encode(),
    ]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    out = run(ketai_bin, cli_env, ["--jsonl", str(path)], b"")
    assert len(out) == 10  # the two empty lines are skipped
    for row in out:
        assert set(row) >= {"text", "escalation", "signals", "latency_ms"}
        assert all(set(s) == {"name", "score", "detector"} for s in row["signals"])
    assert out[0]["escalation"] == "emergency" and out[0]["signals"][0]["name"] == "suicide_risk"
    assert out[1]["escalation"] == "none"  # expected at peak
    assert out[2]["escalation"] == "clinician"  # no phase: outside the peak
    assert out[3]["escalation"] == "emergency" and "not a JSON object" in out[3]["note"]
    assert out[6]["escalation"] != "none" and "bounded window" in out[6]["note"]
    assert "unknown phase" in out[9]["note"] and "unknown role" in out[9]["note"]


def test_output_direction_from_stdin(ketai_bin: str, cli_env: dict[str, str]) -> None:
    data = "\n".join(
        [
            json.dumps({"text": "You definitely locked the door.", "phase": "integration"}),
            json.dumps({"text": "What stood out to you today?", "phase": "integration"}),
            json.dumps({"text": "Try a slow breath.", "assessment_level": "emergency"}),
        ]
    ).encode()
    out = run(ketai_bin, cli_env, ["--direction", "output"], data)
    assert [r["verdict"] for r in out] == ["replace", "pass", "replace"]
    assert out[0]["replacement"] and out[1]["replacement"] is None
    assert "988" in out[2]["replacement"]


def test_phase_flag_applies_to_lines_without_a_phase(ketai_bin: str, cli_env: dict[str, str]) -> None:
    out = run(
        ketai_bin,
        cli_env,
        ["--phase", "peak"],
        b'{"text": "time stopped"}\n{"text": "time stopped", "phase": null}\n',
    )
    assert [r["escalation"] for r in out] == ["none", "clinician"]


def test_missing_file_is_one_clear_line(ketai_bin: str, cli_env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.run(
        [ketai_bin, "screen", "--jsonl", str(tmp_path / "nope.jsonl")],
        capture_output=True,
        env=cli_env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2 and proc.stderr.decode().startswith("ketai: cannot read")


def test_output_contract_line_that_answers_a_crisis_gets_crisis_text(
    ketai_bin: str, cli_env: dict[str, str]
) -> None:
    """A contract line has no assessment; the draft's own words show it answers a crisis."""
    line = {
        "text": "You told me you want to end your life. Let's try a grounding exercise.",
        "phase": "integration",
    }
    out = run(ketai_bin, cli_env, ["--direction", "output"], json.dumps(line).encode())
    assert out[0]["verdict"] == "replace"
    assert "missing_crisis_text" in {s["name"] for s in out[0]["signals"]}
    assert "988" in out[0]["replacement"] and "911" in out[0]["replacement"]
