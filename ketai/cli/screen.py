"""``ketai screen [--direction input|output] [--phase P] [--jsonl FILE]`` (architecture contract).

Reads JSON lines ``{"text", "phase"?, "role"?}`` from FILE or stdin and writes one JSON line per input:
``{"text", "escalation", "signals": [{"name", "score", "detector"}], "latency_ms"}``; for ``--direction
output`` also ``"verdict"`` and ``"replacement"``. A line without a phase is read as outside the peak
(no phase allowances); ``--phase`` sets the phase for lines that do not carry their own.

Robust by design: input is read as bytes and decoded as UTF-8 with replacement; a line that is not a JSON
object is screened as raw text; empty lines are skipped; an unknown phase or role falls back (and says so
in ``note``); very long messages are screened on a bounded window (``note`` says so). Extra optional keys
for output screening: ``assessment_level`` (or ``level``) and ``signals`` describe the input assessment.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

from ketai.errors import KetaiError
from ketai.guardrails import KetaiGuardrails, build_guardrails
from ketai.guardrails.screening import MAX_SCREEN_CHARS
from ketai.models import Assessment, EscalationLevel, Phase, Role, Signal, SignalName

PHASES = [p.value for p in Phase]


def _lines(stream: BinaryIO) -> Iterator[str]:
    for raw in stream:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if line.strip():
            yield line


def _parse(line: str) -> tuple[dict[str, Any], list[str]]:
    notes: list[str] = []
    try:
        value = json.loads(line)
    except (json.JSONDecodeError, RecursionError, ValueError):
        value = None
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        return value, notes
    if isinstance(value, dict):
        notes.append("object without a string 'text': screened the whole line as text")
    else:
        notes.append("not a JSON object: screened the line as text")
    return {"text": line}, notes


def _phase(record: dict[str, Any], default: Phase | None, notes: list[str]) -> Phase | None:
    value = record.get("phase") if "phase" in record else (default.value if default else None)
    if value in (None, ""):
        return None
    if isinstance(value, str) and value in PHASES:
        return Phase(value)
    notes.append(f"unknown phase {str(value)[:40]!r}: read as outside a session")
    return None


def _role(record: dict[str, Any], notes: list[str]) -> Role:
    value = record.get("role", "patient")
    if value in (Role.PATIENT.value, Role.COMPANION.value):
        return Role(value)
    notes.append(f"unknown role {str(value)[:40]!r}: read as patient")
    return Role.PATIENT


def _assessment(record: dict[str, Any], notes: list[str]) -> Assessment | None:
    raw_level = record.get("assessment_level", record.get("level"))
    if raw_level is None:
        return None
    try:
        level = EscalationLevel(raw_level)
    except ValueError:
        notes.append(f"unknown assessment level {str(raw_level)[:40]!r}: ignored")
        return None
    names = [
        n for n in record.get("signals", []) if isinstance(n, str) and n in {s.value for s in SignalName}
    ]
    signals = [Signal(name=SignalName(n), score=1.0, detector="input", level=level) for n in names]
    return Assessment(level=level, signals=signals)


def screen_record(
    guardrails: KetaiGuardrails,
    record: dict[str, Any],
    direction: str,
    default_phase: Phase | None,
    notes: list[str],
) -> dict[str, Any]:
    text: str = record["text"]
    phase = _phase(record, default_phase, notes)
    role = _role(record, notes)
    if len(text) > MAX_SCREEN_CHARS:
        notes.append(f"long message ({len(text)} characters): screened a bounded window")
    start = time.perf_counter()
    if direction == "output":
        assessment = _assessment(record, notes)
        verdict = guardrails.screen_output(text, phase=phase, assessment=assessment)
        latency = (time.perf_counter() - start) * 1000
        level = assessment.level if assessment else EscalationLevel.NONE
        out: dict[str, Any] = {
            "text": text,
            "escalation": level.value,
            "signals": [{"name": r, "score": 1.0, "detector": "output_policy"} for r in verdict.rules],
            "latency_ms": round(latency, 3),
            "verdict": verdict.verdict,
            "replacement": verdict.replacement,
        }
    else:
        result = guardrails.screen_input(text, phase=phase, role=role)
        latency = (time.perf_counter() - start) * 1000
        out = {
            "text": text,
            "escalation": result.level.value,
            "signals": [
                {"name": s.name.value, "score": round(s.score, 4), "detector": s.detector}
                for s in result.signals
            ],
            "latency_ms": round(latency, 3),
        }
        if result.memory_note:
            out["memory_note"] = result.memory_note
    if notes:
        out["note"] = "; ".join(notes)
    return out


def _run(args: argparse.Namespace) -> int:
    guardrails = build_guardrails()
    guardrails.screen_input("warm up", phase=None, role=Role.PATIENT)  # load the model before timing
    default_phase = Phase(args.phase) if args.phase else None
    handle: BinaryIO
    if args.jsonl and args.jsonl != "-":
        try:
            handle = open(args.jsonl, "rb")  # noqa: SIM115 - closed below; stdin must stay open
        except OSError as exc:
            raise KetaiError(f"cannot read {args.jsonl}: {exc.strerror or exc}") from exc
    else:
        handle = sys.stdin.buffer
    out = sys.stdout
    try:
        for line in _lines(handle):
            record, notes = _parse(line)
            result = screen_record(guardrails, record, args.direction, default_phase, notes)
            out.write(json.dumps(result, ensure_ascii=False) + "\n")
            out.flush()
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("screen", help="screen JSON lines of messages (input) or draft replies (output)")
    parser.add_argument("--direction", choices=("input", "output"), default="input")
    parser.add_argument("--phase", choices=PHASES, default=None, help="phase for lines without their own")
    parser.add_argument("--jsonl", default=None, help="file of JSON lines (default: stdin)")
    parser.set_defaults(func=_run)
