"""The session phase machine: an explicit transition table with named guards.

Phases last hours and move on time and on explicit confirmations, so this is
a small, pure, deterministic table rather than a graph runtime: every safety
transition is testable without an engine. Unknown events raise
``InvalidTransition``; a guard that fails raises it with the guard's reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ketai.errors import InvalidTransition
from ketai.facts import SessionFacts
from ketai.models import Phase, Protocol


class Event(StrEnum):
    CHECKLIST_COMPLETE = "checklist_complete"
    HOLD_COMPLETE = "hold_complete"
    PEAK_COMPLETE = "peak_complete"
    INTEGRATION_COMPLETE = "integration_complete"
    SAFETY_HOLD = "safety_hold"
    CLEAR_HOLD = "clear_hold"
    ABORT = "abort"


@dataclass(frozen=True)
class GuardContext:
    facts: SessionFacts
    protocol: Protocol
    now: datetime


GuardFn = Callable[[GuardContext], str | None]
"""Returns ``None`` when the transition may happen, else the reason it may not."""


def checklist_complete(ctx: GuardContext) -> str | None:
    """No dosing until every pre-session item is satisfied."""
    missing = ctx.facts.checklist_missing(ctx.protocol)
    return None if not missing else "pre-session checklist incomplete: " + ", ".join(missing)


def hold_elapsed(ctx: GuardContext) -> str | None:
    facts = ctx.facts
    if facts.dose_placed_at is None:
        return "the dose has not been placed yet"
    remaining = facts.hold_remaining_s(ctx.protocol, ctx.now)
    if remaining > 0:
        return f"hold time not over ({remaining:.0f} s left)"
    if not facts.after_hold_done:
        return f"the patient has not confirmed the {ctx.protocol.after_hold} step"
    return None


def peak_elapsed(ctx: GuardContext) -> str | None:
    facts = ctx.facts
    remaining = facts.peak_remaining_s(ctx.protocol, ctx.now)
    if remaining is None:
        return "peak has not started"
    if remaining > 0:
        return f"minimum peak time not over ({remaining:.0f} s left)"
    if facts.peak_checkins < 1:
        return "no peak check-in has happened"
    if not facts.ready_for_integration:
        return "the patient has not said they are ready to reflect"
    return None


def integration_done(ctx: GuardContext) -> str | None:
    missing = ctx.facts.integration_missing()
    return None if not missing else "integration incomplete: " + ", ".join(missing)


def hold_cleared_before_dose(ctx: GuardContext) -> str | None:
    if not ctx.facts.hold_cleared_by:
        return "only a clinician can clear a safety hold"
    return None if ctx.facts.dose_placed_at is None else "the dose was already taken"


def hold_cleared_after_dose(ctx: GuardContext) -> str | None:
    if not ctx.facts.hold_cleared_by:
        return "only a clinician can clear a safety hold"
    return None if ctx.facts.dose_placed_at is not None else "no dose was taken"


def always(ctx: GuardContext) -> str | None:
    return None


@dataclass(frozen=True)
class Transition:
    source: Phase
    event: Event
    target: Phase
    guard: GuardFn


_ACTIVE = (Phase.PRE_SESSION, Phase.DOSING, Phase.PEAK, Phase.INTEGRATION)

TRANSITIONS: tuple[Transition, ...] = (
    Transition(Phase.PRE_SESSION, Event.CHECKLIST_COMPLETE, Phase.DOSING, checklist_complete),
    Transition(Phase.DOSING, Event.HOLD_COMPLETE, Phase.PEAK, hold_elapsed),
    Transition(Phase.PEAK, Event.PEAK_COMPLETE, Phase.INTEGRATION, peak_elapsed),
    Transition(Phase.INTEGRATION, Event.INTEGRATION_COMPLETE, Phase.COMPLETE, integration_done),
    *(Transition(p, Event.SAFETY_HOLD, Phase.SAFETY_HOLD, always) for p in _ACTIVE),
    # A cleared hold resumes where it is safe: before the dose -> pre-session
    # again (the checklist is re-checked); after the dose -> integration (no more peak guidance).
    Transition(Phase.SAFETY_HOLD, Event.CLEAR_HOLD, Phase.PRE_SESSION, hold_cleared_before_dose),
    Transition(Phase.SAFETY_HOLD, Event.CLEAR_HOLD, Phase.INTEGRATION, hold_cleared_after_dose),
    Transition(Phase.PRE_SESSION, Event.ABORT, Phase.ABORTED, always),
    Transition(Phase.SAFETY_HOLD, Event.ABORT, Phase.ABORTED, always),
)

_TABLE: dict[tuple[Phase, Event], list[Transition]] = {}
for _t in TRANSITIONS:
    _TABLE.setdefault((_t.source, _t.event), []).append(_t)


def resolve(phase: Phase, event: Event, ctx: GuardContext) -> Phase:
    """The phase after ``event`` in ``phase``; raises InvalidTransition with a clear reason."""
    candidates = _TABLE.get((phase, event))
    if not candidates:
        allowed = sorted({e.value for (p, e) in _TABLE if p == phase})
        raise InvalidTransition(
            f"event {event.value!r} is not allowed in phase {phase.value!r}"
            f" (allowed: {', '.join(allowed) or 'none'})"
        )
    reasons: list[str] = []
    for transition in candidates:
        reason = transition.guard(ctx)
        if reason is None:
            return transition.target
        reasons.append(reason)
    raise InvalidTransition(f"cannot {event.value} in {phase.value}: {'; '.join(dict.fromkeys(reasons))}")


def allowed_events(phase: Phase) -> list[Event]:
    return sorted({e for (p, e) in _TABLE if p == phase})


def to_mermaid() -> str:
    """A mermaid state diagram generated from the transition table itself."""
    lines = ["stateDiagram-v2", f"    [*] --> {Phase.PRE_SESSION.value}"]
    for t in TRANSITIONS:
        label = t.event.value if t.guard is always else f"{t.event.value} [{t.guard.__name__}]"
        lines.append(f"    {t.source.value} --> {t.target.value}: {label}")
    lines.append(f"    {Phase.COMPLETE.value} --> [*]")
    lines.append(f"    {Phase.ABORTED.value} --> [*]")
    return "\n".join(lines)
