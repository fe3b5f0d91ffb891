"""rich renderables shared by the session commands."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from ketai.replies import Reply
from ketai.store.base import SessionRecord, TurnRecord

console = Console(highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


def print_reply(reply: Reply) -> None:
    for message in reply.messages:
        if message.audience == "companion":
            console.print(f"[bold magenta]KetAI → companion:[/] {_escape(message.text)}")
        elif message.kind == "safety":
            console.print(f"[bold red]KetAI:[/] {_escape(message.text)}")
        else:
            console.print(f"[bold cyan]KetAI:[/] {_escape(message.text)}")
    for transition in reply.transitions:
        console.print(
            f"[dim]  phase: {transition.from_phase.value} → {transition.to_phase.value} ({transition.reason})[/]"
        )


def sessions_table(sessions: list[SessionRecord]) -> Table:
    table = Table(title="Sessions")
    for column in ("id", "patient", "phase", "highest escalation", "updated"):
        table.add_column(column)
    for s in sessions:
        style = "red" if s.highest_escalation.value in ("clinician", "emergency") else ""
        table.add_row(
            s.id,
            s.patient_id,
            s.phase.value,
            s.highest_escalation.value,
            f"{s.updated_at:%Y-%m-%d %H:%M}",
            style=style,
        )
    return table


def transcript_table(turns: list[TurnRecord]) -> Table:
    table = Table(title="Transcript", show_lines=False)
    for column in ("seq", "who", "phase", "text", "level"):
        table.add_column(column, overflow="fold")
    for t in turns:
        who = t.role.value if t.role.value != "ketai" else f"ketai→{t.meta.get('audience', 'patient')}"
        level = t.assessment.level.value if t.assessment else ""
        table.add_row(str(t.seq), who, t.phase.value, _escape(t.text), level)
    return table


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
