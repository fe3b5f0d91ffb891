"""Score the current guardrails on any labelled file(s), e.g. a new writer's messages before they are added.

    .venv/bin/python benchmarks/score_guardrails_file.py single FILE...    (single-message lines)
    .venv/bin/python benchmarks/score_guardrails_file.py output FILE...    (drafted-reply lines)
    .venv/bin/python benchmarks/score_guardrails_file.py memory FILE...    (memory sequences)

Add ``--pooled`` to score all FILEs as one set with counts as well as rates (the in-sample audit of our own
train and dev files: ``evals/guardrails/train*.jsonl evals/guardrails/dev*.jsonl``), ``--misses`` to list every
miss, ``--by-detector`` (single) to count which layers set the level of benign escalations and how crisis
messages were under-escalated (missed outright or found at too low a level), without printing any message. Same
scoring functions as ``ketai eval guardrails``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from ketai.evals.guardrails import score_memory, score_messages, score_outputs
from ketai.guardrails import build_guardrails


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


CRISIS = frozenset({"suicide_risk", "self_harm", "medical_emergency"})
LEVELS = ("none", "monitor", "companion", "clinician", "emergency")


def by_detector(misses: list[dict[str, Any]], by_id: dict[str, dict[str, Any]]) -> str:
    """Counts only: the layers and signals behind benign escalations, and crisis under-escalations split into
    missed / too low."""
    alarms: Counter[str] = Counter()
    alarm_signals: Counter[str] = Counter()
    under: Counter[str] = Counter()
    for m in misses:
        row = by_id[m["id"]]
        given = LEVELS.index(m["given_level"])
        if row.get("benign") and given >= LEVELS.index("companion"):
            alarms.update(m["detectors"])
            alarm_signals.update(m["given"])
        crisis = CRISIS & set(m["expected"])
        if crisis and given < LEVELS.index(m["expected_level"]):
            kind = "missed" if not crisis & set(m["given"]) else f"{m['given_level']}<{m['expected_level']}"
            under[kind] += 1
    return (
        f"benign escalations by detector {dict(alarms.most_common())}, by signal {dict(alarm_signals.most_common())}; "
        f"crisis under-escalated {dict(under.most_common())}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("single", "output", "memory"))
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--misses", action="store_true")
    parser.add_argument("--by-detector", action="store_true")
    parser.add_argument("--pooled", action="store_true", help="score all files together (single only)")
    parser.add_argument(
        "--level-blind", action="store_true", help="output: drafts screened without their assessment level"
    )
    args = parser.parse_args()
    guardrails = build_guardrails()
    sets = [(path.name, _rows(path)) for path in args.files]
    if args.pooled:
        sets = [(f"pooled {len(sets)} files", [row for _, rows in sets for row in rows])]
    for name, rows in sets:
        by_id = {r["id"]: r for r in rows}
        if args.kind == "single":
            r = score_messages(guardrails, rows)
            print(
                f"{name}: n={r['n']} crisis under-escalated={r['crisis_under_escalation_rate']:.3f} "
                f"({r['crisis_under']} of {r['crisis_rows']}) "
                f"benign escalated={r['benign_false_escalation_rate']:.3f} "
                f"({r['benign_escalated']} of {r['benign_rows']}) p95={r['latency_ms']['p95']} ms"
            )
            for name, v in r["crisis_signals"].items():
                if v["n"]:  # a signal absent from the file has no recall
                    print(f"   {name}: n={v['n']} recall={v['recall']:.3f} under={v['under_rate']:.3f}")
            if args.by_detector:
                print("   " + by_detector(r["misses"], by_id))
            misses = [
                f"[{m['id']}] exp={m['expected']}@{m['expected_level']} got={m['given']}@{m['given_level']}"
                f" :: {by_id[m['id']]['text'][:200]}"
                for m in r["misses"]
            ]
        elif args.kind == "output":
            r = score_outputs(guardrails, rows, level_blind=args.level_blind)
            print(
                f"{name}: unsafe replaced={r['replace_rate_unsafe']:.3f} (n {r['unsafe']}) "
                f"safe replaced={r['false_replace_rate_safe']:.3f} (n {r['safe']})"
            )
            print("   per rule:", {k: (v["n"], round(v["rate"], 2)) for k, v in r["per_rule"].items()})
            misses = [
                f"[{m['id']}] expected {m['expected']} {m.get('rule') or m.get('fired')}"
                f" :: {by_id[m['id']]['text'][:300]}"
                for m in r["failures"]
            ]
        else:
            r = score_memory(guardrails, rows)
            print(f"{name}: correct={r['accuracy']:.3f} under={r['under_rate']:.3f} n={r['n']}")
            misses = [
                f"[{m['id']}] exp={m['expected']} got={m['given']} :: "
                + " | ".join(t["text"][:90] for t in by_id[m["id"]]["turns"])
                for m in r["failures"]
            ]
        if args.misses:
            for line in misses:
                print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
