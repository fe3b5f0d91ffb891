"""``ketai chat``: the interactive terminal session on real time.

Lines starting with ``/companion`` are the companion speaking (``/patient``
switches back); ``/wait`` lets timed prompts speak; ``/status`` shows where
the session is; ``/quit`` leaves (the session stays resumable). Input is read
as bytes and decoded leniently, so invalid UTF-8 never crashes the chat.
"""

from __future__ import annotations

import argparse
import sys
import time

from ketai.cli.render import console, print_reply
from ketai.content.protocols import load_protocol
from ketai.models import TERMINAL_PHASES, Role
from ketai.replies import Reply
from ketai.settings import Settings

HELP = "Commands: /companion TEXT, /patient TEXT, /wait, /status, /quit"


def _read_line() -> str | None:
    raw = sys.stdin.buffer.readline()
    if not raw:
        return None
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")


def _countdown(engine: object, session_id: str, reply: Reply) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    remaining = reply.hold_remaining_s or 0.0
    if remaining <= 0:
        return
    try:
        with Progress(TextColumn("hold"), BarColumn(), TimeRemainingColumn(), console=console) as progress:
            task = progress.add_task("hold", total=remaining)
            start = time.monotonic()
            while (elapsed := time.monotonic() - start) < remaining:
                progress.update(task, completed=elapsed)
                time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("[dim]countdown hidden; type /wait to check the timer[/]")


def run_chat(args: argparse.Namespace) -> int:
    from ketai.app import build_engine

    settings = Settings()
    engine = build_engine(settings)
    interactive = sys.stdin.isatty()
    if args.session:
        resumed = engine.resume(args.session)
        if resumed is not None:
            print_reply(resumed)
        reply = engine.status(args.session)
        session = engine.store.get_session(args.session)
        last = [t for t in engine.store.turns(args.session) if t.role is Role.KETAI][-3:]
        console.print(f"[bold]Resumed session {session.id}[/] (phase {session.phase.value})")
        for turn in last:
            console.print(f"[cyan]KetAI (earlier):[/] {turn.text}")
    else:
        protocol = load_protocol(args.protocol or settings.protocol_file)
        reply = engine.start(protocol)
        console.print(f"[bold]Session {reply.session_id}[/]  ({HELP})")
        print_reply(reply)
    session_id = reply.session_id
    default_role = Role(args.role)
    while True:
        ticked = engine.tick(session_id)
        if ticked is not None:
            print_reply(ticked)
            reply = ticked
        if reply.phase in TERMINAL_PHASES:
            console.print(f"[dim]Session {session_id} ended ({reply.phase.value}).[/]")
            return 0
        if interactive and reply.awaiting == "hold" and not args.no_countdown:
            _countdown(engine, session_id, reply)
            continue
        if interactive:
            console.print("[green]you>[/] ", end="")
        line = _read_line()
        if line is None:
            console.print(f"[dim]Input closed. Resume with: ketai chat --session {session_id}[/]")
            return 0
        role, text = default_role, line
        stripped = line.strip()
        if stripped in ("/quit", "/exit"):
            console.print(f"[dim]Saved. Resume with: ketai chat --session {session_id}[/]")
            return 0
        if stripped == "/status":
            reply = engine.status(session_id)
            console.print(
                f"phase {reply.phase.value}, waiting for {reply.awaiting}, level {reply.level.value}"
            )
            continue
        if stripped == "/wait":
            reply = engine.status(session_id)
            continue
        if stripped.startswith("/companion"):
            role, text = Role.COMPANION, stripped[len("/companion") :].strip()
        elif stripped.startswith("/patient"):
            role, text = Role.PATIENT, stripped[len("/patient") :].strip()
        elif stripped.startswith("/help"):
            console.print(HELP)
            continue
        reply = engine.turn(session_id, role, text)
        print_reply(reply)
