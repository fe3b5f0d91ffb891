"""Clinician session report (JSON, Markdown, HTML) built from the stored transcript and events."""

from __future__ import annotations

import html
from typing import Any

from ketai.store.base import TranscriptStore, TurnRecord


def transcript_rows(turns: list[TurnRecord]) -> list[dict[str, Any]]:
    """One plain dict per stored turn (clinician report, demo JSON)."""
    return [
        {
            "seq": t.seq,
            "role": t.role.value,
            "phase": t.phase.value,
            "text": t.text,
            "audience": t.meta.get("audience"),
            "prompt_id": t.prompt_id,
            "prompt_version": t.prompt_version,
            "level": t.assessment.level.value if t.assessment else None,
        }
        for t in turns
    ]


def build_report(store: TranscriptStore, session_id: str) -> dict[str, Any]:
    session = store.get_session(session_id)
    events = store.events(session_id)
    turns = store.turns(session_id)
    transitions = [e.data for e in events if e.kind == "transition"]
    measurements = [e.data | {"at": e.created_at.isoformat()} for e in events if e.kind == "measurement"]
    safety = [
        {"seq": e.seq, "kind": e.kind, **e.data, "at": e.created_at.isoformat()}
        for e in events
        if e.kind
        in {
            "assessment",
            "companion_alert",
            "companion_ack",
            "companion_alert_unacknowledged",
            "clinician_notice",
            "output_replaced",
            "hold_cleared",
            "suicide_screen",
        }
    ]
    offered = [o for e in events if e.kind == "exercise_offered" for o in e.data.get("offers", [])]
    chosen = [e.data for e in events if e.kind == "exercise_chosen"]
    return {
        "session_id": session.id,
        "patient_id": session.patient_id,
        "patient_name": session.protocol.patient_name,
        "session_number": session.protocol.session_number,
        "phase": session.phase.value,
        "highest_escalation": session.highest_escalation.value,
        "created_at": session.created_at.isoformat(),
        "updated_at": session.updated_at.isoformat(),
        "intention": session.facts.intention,
        "reflection": session.facts.reflection,
        "hold_reason": session.facts.hold_reason,
        "reassurance_counts": session.memory.reassurance_counts,
        "transitions": transitions,
        "measurements": measurements,
        "safety_events": safety,
        "exercises_offered": offered,
        "exercises_chosen": chosen,
        "transcript": transcript_rows(turns),
        "note": "Acute in-session rating changes are not a treatment response; Y-BOCS is rated by the clinician.",
    }


def to_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Session report {report['session_id']}",
        "",
        f"- Patient: {report['patient_name']} ({report['patient_id']}), session {report['session_number']}",
        f"- Phase: {report['phase']}; highest escalation: **{report['highest_escalation']}**",
        f"- Started {report['created_at']}, last activity {report['updated_at']}",
    ]
    if report["hold_reason"]:
        lines.append(f"- Safety hold reason: {report['hold_reason']}")
    lines += ["", f"> {report['note']}", "", "## Phases", ""]
    lines += [
        f"- {t['from_phase']} -> {t['to_phase']} ({t['event']}): {t['reason']}" for t in report["transitions"]
    ]
    lines += ["", "## Measurements", "", "| kind | label | value |", "|---|---|---|"]
    lines += [f"| {m['kind']} | {m['label']} | {m['value']:g} |" for m in report["measurements"]]
    lines += ["", "## Safety events", ""]
    if not report["safety_events"]:
        lines.append("None.")
    for ev in report["safety_events"]:
        detail = ev.get("level") or ev.get("rules") or ev.get("clinician") or ""
        signals = ", ".join(s["name"] if isinstance(s, dict) else str(s) for s in ev.get("signals", []))
        lines.append(f"- turn {ev['seq']}: {ev['kind']} {detail} {signals}".rstrip())
    if report["reassurance_counts"]:
        lines += ["", "## Reassurance seeking (count per topic)", ""]
        lines += [f"- {topic}: {count}" for topic, count in report["reassurance_counts"].items()]
    lines += [
        "",
        "## Integration",
        "",
        f"- Intention: {report['intention'] or '-'}",
        f"- Reflection: {report['reflection'] or '-'}",
        "",
        "### Exercises offered",
        "",
    ]
    lines += [f"- {o['id']}: {o['title']}" for o in report["exercises_offered"]] or ["None."]
    lines += ["", "### Exercises chosen", ""]
    lines += [f"- {c['id']}: {c['title']}" for c in report["exercises_chosen"]] or ["None."]
    lines += ["", "## Transcript", ""]
    for turn in report["transcript"]:
        who = turn["role"] if turn["role"] != "ketai" else f"ketai→{turn['audience'] or 'patient'}"
        lines.append(f"**{turn['seq']} {who}** ({turn['phase']}): {turn['text']}")
        lines.append("")
    return "\n".join(lines)


def to_html(report: dict[str, Any]) -> str:
    body = html.escape(to_markdown(report))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>KetAI session report</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto}pre{white-space:pre-wrap}"
        f"</style></head><body><pre>{body}</pre></body></html>"
    )
