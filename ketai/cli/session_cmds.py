"""Session commands: chat, demo, sessions, transcript, report, machine, clear-hold."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ketai.cli.render import console, print_json, print_reply, sessions_table, transcript_table
from ketai.review.report import transcript_rows
from ketai.settings import Settings


def register(sub: argparse._SubParsersAction[Any]) -> None:
    chat = sub.add_parser("chat", help="interactive session (patient; companion with /companion prefix)")
    chat.add_argument("--session", help="resume this session id")
    chat.add_argument("--role", choices=("patient", "companion"), default="patient")
    chat.add_argument("--protocol", type=Path, help="patient protocol YAML (default: shipped example)")
    chat.add_argument("--no-countdown", action="store_true", help="don't show the live hold countdown")
    chat.set_defaults(func=_chat)

    demo = sub.add_parser("demo", help="a simulated patient runs a full session offline")
    group = demo.add_mutually_exclusive_group(required=True)
    group.add_argument("--list", action="store_true", help="list persona names")
    group.add_argument("--persona", help="persona name")
    demo.add_argument("--json", action="store_true")
    demo.set_defaults(func=_demo)

    sessions = sub.add_parser("sessions", help="list stored sessions")
    sessions.add_argument("--json", action="store_true")
    sessions.set_defaults(func=_sessions)

    transcript = sub.add_parser("transcript", help="show a stored transcript")
    transcript.add_argument("id")
    transcript.add_argument("--json", action="store_true")
    transcript.set_defaults(func=_transcript)

    report = sub.add_parser("report", help="clinician report for one session")
    report.add_argument("id")
    report.add_argument("--format", choices=("md", "html", "json"), default="md")
    report.add_argument("--out", type=Path)
    report.set_defaults(func=_report)

    machine = sub.add_parser("machine", help="the phase machine")
    machine.add_argument("--mermaid", action="store_true", help="print the mermaid diagram from the table")
    machine.set_defaults(func=_machine)

    clear = sub.add_parser("clear-hold", help="clinician clears a safety hold")
    clear.add_argument("id")
    clear.add_argument("--clinician", required=True)
    clear.add_argument("--note", default="")
    clear.set_defaults(func=_clear_hold)


def _store() -> Any:
    from ketai.store.sqlite import SQLiteTranscriptStore

    return SQLiteTranscriptStore(Settings().db_path)


def _chat(args: argparse.Namespace) -> int:
    from ketai.cli.chat import run_chat

    return run_chat(args)


def _demo(args: argparse.Namespace) -> int:
    from ketai.simulate import list_personas

    if args.list:
        for name in list_personas():
            print(name)
        return 0
    from ketai.app import build_engine
    from ketai.clock import ManualClock
    from ketai.simulate import load_persona, run_persona

    persona = load_persona(args.persona)
    clock = ManualClock()
    engine = build_engine(clock=clock)
    result = run_persona(engine, clock, persona)
    session = engine.store.get_session(result.session_id)
    transitions = [t for r in result.replies for t in r.transitions]
    phases = ["pre_session"] + [t.to_phase.value for t in transitions]
    if args.json:
        print_json(
            {
                "session_id": result.session_id,
                "persona": persona.name,
                "final_phase": session.phase.value,
                "highest_escalation": session.highest_escalation.value,
                "phases": phases,
                "transitions": [
                    {
                        "from": t.from_phase.value,
                        "to": t.to_phase.value,
                        "event": t.event,
                        "reason": t.reason,
                        "at": t.at.isoformat(),
                        "seq": t.seq,
                    }
                    for t in transitions
                ],
                "turns": transcript_rows(engine.store.turns(result.session_id)),
            }
        )
        return 0
    console.rule(f"[bold]Demo: {persona.name}[/] — {persona.description}")
    said_before = {s["reply_index"]: s for s in result.sent}
    for index, reply in enumerate(result.replies):
        if index in said_before:
            console.print(f"[bold green]{said_before[index]['role']}:[/] {said_before[index]['text']}")
        print_reply(reply)
    console.rule(f"session {result.session_id} — phases: {' → '.join(phases)}")
    return 0


def _sessions(args: argparse.Namespace) -> int:
    sessions = _store().list_sessions()
    if args.json:
        print_json(
            [
                {
                    "id": s.id,
                    "patient_id": s.patient_id,
                    "phase": s.phase.value,
                    "highest_escalation": s.highest_escalation.value,
                    "created_at": s.created_at.isoformat(),
                    "updated_at": s.updated_at.isoformat(),
                }
                for s in sessions
            ]
        )
    else:
        console.print(sessions_table(sessions))
    return 0


def _transcript(args: argparse.Namespace) -> int:
    store = _store()
    session = store.get_session(args.id)
    turns = store.turns(args.id)
    if args.json:
        print_json(
            {
                "session_id": session.id,
                "phase": session.phase.value,
                "highest_escalation": session.highest_escalation.value,
                "turns": [t.model_dump(mode="json") for t in turns],
                "events": [e.model_dump(mode="json") for e in store.events(args.id)],
            }
        )
    else:
        console.print(transcript_table(turns))
    return 0


def _report(args: argparse.Namespace) -> int:
    import json

    from ketai.review.report import build_report, to_html, to_markdown

    report = build_report(_store(), args.id)
    text = {
        "json": lambda r: json.dumps(r, indent=2, ensure_ascii=False),
        "md": to_markdown,
        "html": to_html,
    }[args.format](report)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text + "\n")
    return 0


def _machine(args: argparse.Namespace) -> int:
    from ketai.machine import TRANSITIONS, to_mermaid

    if args.mermaid:
        print(to_mermaid())
    else:
        for t in TRANSITIONS:
            print(f"{t.source.value:12} --{t.event.value}--> {t.target.value:12} [{t.guard.__name__}]")
    return 0


def _clear_hold(args: argparse.Namespace) -> int:
    from ketai.app import build_engine

    reply = build_engine().clear_hold(args.id, args.clinician, args.note)
    print_reply(reply)
    return 0
