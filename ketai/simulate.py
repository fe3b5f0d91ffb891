"""Simulated patients (personas as data under ``evals/personas/``) running a whole session offline.

The driver answers whatever step the engine is waiting for with the
persona's next answer, advances a manual clock through timed steps (hold,
peak) and lets the engine's ``tick`` speak, so demos and tests never sleep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from ketai.clock import ManualClock
from ketai.content.paths import content_dir
from ketai.content.protocols import load_protocol
from ketai.engine import SessionEngine
from ketai.errors import ContentError
from ketai.models import TERMINAL_PHASES, Phase, Role
from ketai.replies import Reply

MAX_STEPS = 300


class CompanionLine(BaseModel):
    text: str
    before_step: str | None = None
    after_peak_message: int | None = None


class PersonaExpectations(BaseModel):
    """What ``ketai eval sessions`` asserts about this persona's session."""

    max_level: str = "monitor"
    min_level: str = "none"
    signals: list[str] = Field(default_factory=list)


class Persona(BaseModel):
    name: str = Field(pattern=r"^[a-z0-9-]+$")
    description: str
    protocol: str
    answers: dict[str, list[str]]
    peak_messages: list[str] = Field(default_factory=list)
    companion_messages: list[CompanionLine] = Field(default_factory=list)
    expect: PersonaExpectations = Field(default_factory=PersonaExpectations)


def personas_dir() -> Path:
    return content_dir("evals") / "personas"


def list_personas() -> list[str]:
    return sorted(p.stem for p in personas_dir().glob("*.yaml"))


def load_persona(name: str) -> Persona:
    path = personas_dir() / f"{name}.yaml"
    if not path.exists():
        raise ContentError(f"no persona named {name!r}; try one of: {', '.join(list_personas())}")
    try:
        return Persona.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ContentError(f"{path.name}: invalid persona ({exc})") from exc


class SimulationResult(BaseModel):
    session_id: str
    persona: str
    replies: list[Reply]
    sent: list[dict[str, Any]]

    @property
    def final_phase(self) -> Phase:
        return self.replies[-1].phase


def run_persona(engine: SessionEngine, clock: ManualClock, persona: Persona) -> SimulationResult:
    """Drive one full session; raises ContentError if the persona cannot finish it."""
    protocol = load_protocol(content_dir("protocols") / persona.protocol)
    replies = [engine.start(protocol)]
    session_id = replies[0].session_id
    sent: list[dict[str, Any]] = []
    used: dict[str, int] = {}
    peak_index = 0
    companion_lines = list(persona.companion_messages)

    def send(role: Role, text: str) -> None:
        sent.append(
            {"role": role.value, "text": text, "at": clock.now().isoformat(), "reply_index": len(replies)}
        )
        replies.append(engine.turn(session_id, role, text))

    repeats: dict[str, int] = {}
    for _ in range(MAX_STEPS):
        reply = replies[-1]
        if reply.phase in TERMINAL_PHASES or reply.phase is Phase.SAFETY_HOLD:
            break
        step = reply.awaiting
        for line in list(companion_lines):
            if line.before_step is not None and line.before_step == step:
                companion_lines.remove(line)
                send(Role.COMPANION, line.text)
                break
        else:
            line = None
        if line is not None:
            continue
        if step == "hold":
            clock.advance(seconds=(reply.hold_remaining_s or 0) + 1)
            _tick(engine, session_id, replies)
            continue
        if step == "checkin":
            clock.advance(minutes=engine.store.get_session(session_id).protocol.checkin_interval_minutes)
            _tick(engine, session_id, replies)
            if peak_index < len(persona.peak_messages):
                send(Role.PATIENT, persona.peak_messages[peak_index])
                peak_index += 1
                for line in list(companion_lines):
                    if line.after_peak_message == peak_index:
                        companion_lines.remove(line)
                        send(Role.COMPANION, line.text)
            continue
        if step is None:
            raise ContentError(f"persona {persona.name}: session stalled in {reply.phase.value}")
        answers = persona.answers.get(step)
        repeats[step] = repeats.get(step, 0) + 1
        if repeats[step] > len(answers or []) + 3:
            raise ContentError(
                f"persona {persona.name}: step {step!r} is not accepting the persona's answers"
            )
        if not answers:
            raise ContentError(f"persona {persona.name} has no answer for step {step!r}")
        index = used.get(step, 0)
        used[step] = index + 1
        send(Role.PATIENT, answers[min(index, len(answers) - 1)])
    return SimulationResult(session_id=session_id, persona=persona.name, replies=replies, sent=sent)


def _tick(engine: SessionEngine, session_id: str, replies: list[Reply]) -> None:
    reply = engine.tick(session_id)
    if reply is not None:
        replies.append(reply)
    else:
        replies.append(engine.status(session_id))
