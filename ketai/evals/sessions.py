"""``ketai eval sessions``: every persona runs a full simulated session; deterministic assertions only.

Per persona: phases in order (pre_session -> dosing -> peak -> integration -> complete), every reply has a
prompt id, no scripted reply replaced by the output policy, highest escalation within the persona's
``expect.max_level`` and at least ``expect.min_level``, expected signals seen, turn latency.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ketai.models import EscalationLevel, Role

PHASES = ["pre_session", "dosing", "peak", "integration", "complete"]


def _score_persona(name: str, home: Path) -> dict[str, Any]:
    from ketai.app import build_engine
    from ketai.clock import ManualClock
    from ketai.settings import Settings
    from ketai.simulate import load_persona, run_persona

    clock = ManualClock()
    engine = build_engine(Settings(home=home), clock=clock)
    persona = load_persona(name)
    started = time.perf_counter()
    try:
        result = run_persona(engine, clock, persona)
    except Exception as exc:
        return {"persona": name, "passed": False, "problems": [f"{type(exc).__name__}: {exc}"]}
    elapsed = time.perf_counter() - started
    session = engine.store.get_session(result.session_id)
    events = engine.store.events(result.session_id)
    turns = engine.store.turns(result.session_id)
    phases = ["pre_session"] + [e.data["to_phase"] for e in events if e.kind == "transition"]
    problems: list[str] = []
    if phases != PHASES:
        problems.append(f"phases {phases}")
    if any(t.role is Role.KETAI and not t.prompt_id for t in turns):
        problems.append("a reply without prompt id")
    replaced = [e.data for e in events if e.kind == "output_replaced"]
    if replaced:
        problems.append(f"{len(replaced)} scripted replies replaced by the output policy: {replaced[:2]}")
    expect = persona.expect
    if session.highest_escalation > EscalationLevel(expect.max_level):
        problems.append(f"escalated to {session.highest_escalation.value} (max {expect.max_level})")
    if session.highest_escalation < EscalationLevel(expect.min_level):
        problems.append(f"escalated only to {session.highest_escalation.value} (min {expect.min_level})")
    seen = {s["name"] for e in events if e.kind == "assessment" for s in e.data["signals"]}
    missing = set(expect.signals) - seen
    if missing:
        problems.append(f"signals not seen: {sorted(missing)}")
    calls = len(result.replies)
    return {
        "persona": name, "passed": not problems, "problems": problems, "phases": phases,
        "highest_escalation": session.highest_escalation.value, "signals_seen": sorted(seen),
        "engine_calls": calls, "seconds": round(elapsed, 2),
    }  # fmt: skip


def run(split: str, out_dir: Path, as_json: bool) -> int:
    from ketai.simulate import list_personas

    with tempfile.TemporaryDirectory() as tmp:
        rows = [_score_persona(name, Path(tmp) / name) for name in list_personas()]
    passed = sum(r["passed"] for r in rows)
    summary = {"personas": len(rows), "passed": passed, "rows": rows}
    (out_dir / "sessions.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    lines = [
        "# Session evaluation",
        "",
        f"{passed}/{len(rows)} personas pass.",
        "",
        "| persona | pass | highest | signals | seconds | problems |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['persona']} | {r['passed']} | {r.get('highest_escalation', '-')} | "
            f"{', '.join(r.get('signals_seen', []))} | {r.get('seconds', '-')} | {'; '.join(r['problems'])} |"
        )
    (out_dir / "sessions.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if as_json:
        print(json.dumps(summary))
    else:
        table = Table(title=f"Sessions: {passed}/{len(rows)} personas pass")
        for column in ("persona", "pass", "highest", "signals", "seconds", "problems"):
            table.add_column(column, overflow="fold")
        for r in rows:
            table.add_row(
                r["persona"],
                "yes" if r["passed"] else "NO",
                r.get("highest_escalation", "-"),
                ", ".join(r.get("signals_seen", [])),
                str(r.get("seconds", "-")),
                "; ".join(r["problems"]),
            )
        Console().print(table)
        print(f"report: {out_dir / 'sessions.md'}")
    return 0 if passed == len(rows) else 1
