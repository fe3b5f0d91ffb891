"""Screening latency on this machine: p50/p95/p99 per message for input and output screening.

Run: ``.venv/bin/python benchmarks/bench_screen.py [--split dev] [--repeat 3]``. Uses the labelled texts in
``evals/guardrails/`` (input: ``{split}.jsonl``; output: ``outputs_train.jsonl`` or ``outputs_{split}.jsonl``)
only as a workload; nothing is scored or tuned here. The model is warmed up before timing.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ketai.content.paths import content_dir
from ketai.evals.guardrails import percentile
from ketai.guardrails import KetaiGuardrails, build_guardrails
from ketai.models import Assessment, EscalationLevel, Phase, Role


def _rows(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def input_timings(guardrails: KetaiGuardrails, messages: list[dict[str, object]]) -> list[float]:
    """Milliseconds of ``screen_input`` for each message, once through."""
    timings = []
    for row in messages:
        phase = Phase(str(row["phase"])) if row.get("phase") else None
        start = time.perf_counter()
        guardrails.screen_input(str(row["text"]), phase=phase, role=Role(str(row.get("role", "patient"))))
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="dev")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = content_dir("evals") / "guardrails"
    started = time.perf_counter()
    guardrails = build_guardrails()
    guardrails.screen_input("warm up", phase=None, role=Role.PATIENT)
    print(f"load + warm-up: {(time.perf_counter() - started) * 1000:.0f} ms")
    messages = _rows(folder / f"{args.split}.jsonl")
    outputs = _rows(folder / f"outputs_{args.split}.jsonl") or _rows(folder / "outputs_train.jsonl")
    timings_in: list[float] = []
    timings_out: list[float] = []
    for _ in range(args.repeat):
        timings_in += input_timings(guardrails, messages)
        for row in outputs:
            phase = Phase(str(row["phase"])) if row.get("phase") else None
            assessment = Assessment(level=EscalationLevel(str(row.get("assessment_level") or "none")))
            start = time.perf_counter()
            guardrails.screen_output(str(row["text"]), phase=phase, assessment=assessment)
            timings_out.append((time.perf_counter() - start) * 1000)
    for name, values in (("input", timings_in), ("output", timings_out)):
        p50, p95, p99 = (percentile(values, q) for q in (50, 95, 99))
        print(
            f"{name:6s} n={len(values):5d}  p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  "
            f"p99 {p99:6.2f} ms  max {max(values, default=0):6.2f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
