"""The scripted session dialogue: which step is current, and what an answer means.

Pure functions over ``SessionFacts`` and the protocol: they never do I/O and
never generate text. They return ``Say`` items (prompt step + key +
variables) that a responder turns into words, and ``Event``s for the phase
machine. The current step is derived from the facts, so a resumed session
asks exactly the next unanswered question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ketai.facts import BPReading, SessionFacts
from ketai.machine import Event
from ketai.models import MeasurementKind, Phase, Protocol
from ketai.parsing import normalise, parse_blood_pressure, parse_rating, parse_yes_no


@dataclass(frozen=True)
class Say:
    step: str
    key: str
    variables: dict[str, Any] = field(default_factory=dict)
    variant: int = 0
    audience: str = "patient"


@dataclass
class Interpretation:
    says: list[Say] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    measurements: list[tuple[MeasurementKind, float, str]] = field(default_factory=list)
    hold_reason: str | None = None
    abort_reason: str | None = None
    answered_step: str | None = None
    asked: bool = False
    """True when ``says`` already ends the turn with a question or instruction."""


PRE_SESSION_STEPS = (
    "companion_present", "companion_name", "bp", "substances", "fasting", "setting", "dose_confirm",
    "intention", "baseline_suds", "baseline_ocd_vas",
)  # fmt: skip

FREE_TEXT_STEPS = frozenset({"intention", "reflection"})
"""Steps whose answer is whatever the patient says in their own words."""

_RESCHEDULE = re.compile(r"^\s*(?:/?reschedule|/?cancel|stop for today)\b", re.IGNORECASE)
_READY = re.compile(r"\b(?:ready|i'?m back|back now|let'?s reflect|done resting)\b")
_NONE = re.compile(r"^\s*(?:none|no|nope|skip|not now|no thanks|neither)\b")


def current_step(phase: Phase, facts: SessionFacts, protocol: Protocol, now: datetime) -> str | None:
    """The step waiting for an answer, derived from the facts."""
    if phase is Phase.PRE_SESSION:
        for step in PRE_SESSION_STEPS:
            if not _pre_step_done(step, facts, protocol):
                return step
        return None
    if phase is Phase.DOSING:
        if facts.dose_placed_at is None:
            return "place_dose"
        if facts.hold_remaining_s(protocol, now) > 0:
            return "hold"
        return None if facts.after_hold_done else "after_hold"
    if phase is Phase.PEAK:
        remaining = facts.peak_remaining_s(protocol, now)
        return "ready" if remaining == 0 else "checkin"
    if phase is Phase.INTEGRATION:
        if facts.reflection is None:
            return "reflection"
        if facts.post_suds is None:
            return "post_suds"
        if facts.post_ocd_vas is None:
            return "post_ocd_vas"
        if not facts.exercise_step_done:
            return "exercises"
        return None
    return None


def _pre_step_done(step: str, facts: SessionFacts, protocol: Protocol) -> bool:
    if step == "bp":
        bp = facts.latest_bp
        return bp is not None and bp.within(protocol)
    value = {
        "companion_present": facts.companion_present,
        "companion_name": facts.companion_name_confirmed,
        "substances": facts.no_substances,
        "fasting": facts.fasting_ok,
        "setting": facts.setting_safe,
        "dose_confirm": facts.dose_confirmed,
        "intention": facts.intention,
        "baseline_suds": facts.baseline_suds,
        "baseline_ocd_vas": facts.baseline_ocd_vas,
    }[step]
    return value is not None and value is not False


def ask(step: str, facts: SessionFacts, protocol: Protocol, *, reask: bool = False) -> Say:
    """The question for ``step`` (or its rephrased form after an unclear answer)."""
    if step == "after_hold":
        return Say(step, f"ask_{protocol.after_hold}")
    if step == "hold":
        return Say(step, "ask")
    if step == "checkin":
        return Say("checkin", "variants", variant=facts.peak_checkins)
    if step == "ready":
        return Say("ready_reask" if reask else "ready_prompt", "ok")
    return Say(step, "reask" if reask else "ask")


def interpret_patient(
    phase: Phase, facts: SessionFacts, protocol: Protocol, text: str, now: datetime
) -> Interpretation:
    """Apply a patient's answer to ``facts`` (in place) and say what comes next."""
    out = Interpretation()
    step = current_step(phase, facts, protocol, now)
    t = normalise(text)
    if phase is Phase.PRE_SESSION and _RESCHEDULE.match(t):
        out.abort_reason = "patient asked to reschedule before dosing"
        out.says.append(Say("reschedule", "ok"))
        out.events.append(Event.ABORT)
        out.asked = True
        return out
    if step is None:
        return out
    handler = _HANDLERS.get(step)
    if handler is None:
        return out
    handler(out, facts, protocol, text, now)
    if out.answered_step is None and not out.says:
        _unclear(out, step, facts, protocol)
    return out


def _unclear(out: Interpretation, step: str, facts: SessionFacts, protocol: Protocol) -> None:
    facts.unclear_counts[step] = facts.unclear_counts.get(step, 0) + 1
    out.says.append(ask(step, facts, protocol, reask=True))
    out.asked = True


def _yes_no_step(attr: str, on_no: str | None, hold_on: bool | None = None, hold_reason: str = "") -> Any:
    """Handler for a yes/no checklist item; ``hold_on`` is the answer that puts the session on hold."""

    def handler(
        out: Interpretation, facts: SessionFacts, protocol: Protocol, text: str, now: datetime
    ) -> None:
        answer = parse_yes_no(text)
        if answer is None:
            return
        step = _STEP_FOR_ATTR[attr]
        out.answered_step = step
        good = (not answer) if attr == "no_substances" else answer
        setattr(facts, attr, good)
        if hold_on is not None and answer is hold_on:
            out.hold_reason = hold_reason
        if not good and on_no:
            out.says.append(Say(step, on_no))
            out.asked = True

    return handler


_STEP_FOR_ATTR = {
    "companion_present": "companion_present",
    "companion_name_confirmed": "companion_name",
    "no_substances": "substances",
    "fasting_ok": "fasting",
    "setting_safe": "setting",
    "dose_confirmed": "dose_confirm",
}


def _bp(out: Interpretation, facts: SessionFacts, protocol: Protocol, text: str, now: datetime) -> None:
    reading = parse_blood_pressure(text)
    if reading is None:
        return
    out.answered_step = "bp"
    bp = BPReading(systolic=reading.systolic, diastolic=reading.diastolic, at=now)
    high_before = sum(1 for r in facts.bp_readings if not r.within(protocol))
    facts.bp_readings.append(bp)
    out.measurements += [
        (MeasurementKind.BP_SYSTOLIC, bp.systolic, "pre_session"),
        (MeasurementKind.BP_DIASTOLIC, bp.diastolic, "pre_session"),
    ]
    values = {"systolic": bp.systolic, "diastolic": bp.diastolic}
    if bp.within(protocol):
        out.says.append(Say("bp", "ok", values))
    elif bp.emergency(protocol) or high_before >= 1:
        out.says.append(Say("bp", "high_again", values))
        out.hold_reason = f"blood pressure {bp.systolic}/{bp.diastolic} above the protocol limit"
        out.asked = True
    else:
        out.says.append(Say("bp", "high_first", values))
        out.asked = True


def _free_text(attr: str, ok_key: str | None) -> Any:
    def handler(
        out: Interpretation, facts: SessionFacts, protocol: Protocol, text: str, now: datetime
    ) -> None:
        cleaned = " ".join(text.split())[:500]
        if len(cleaned) < 1:
            return
        setattr(facts, attr, cleaned)
        out.answered_step = attr
        if ok_key:
            out.says.append(Say(attr, ok_key, {attr: cleaned[:120]}))

    return handler


def _rating(attr: str, scale_max: int, kind: MeasurementKind, label: str) -> Any:
    def handler(
        out: Interpretation, facts: SessionFacts, protocol: Protocol, text: str, now: datetime
    ) -> None:
        value = parse_rating(text, scale_max)
        if value is None:
            return
        setattr(facts, attr, value)
        out.answered_step = attr
        out.measurements.append((kind, value, label))

    return handler


def _place_dose(
    out: Interpretation, facts: SessionFacts, protocol: Protocol, text: str, now: datetime
) -> None:
    t = normalise(text)
    if parse_yes_no(t) is True or re.search(
        r"\b(?:placed|it'?s in|in my (?:mouth|cheek)|under my tongue)\b", t
    ):
        facts.dose_placed_at = now
        out.answered_step = "place_dose"
        out.says.append(Say("hold", "started", {"hold_minutes": f"{protocol.hold_minutes:g}"}))
        out.asked = True


def _hold(out: Interpretation, facts: SessionFacts, protocol: Protocol, text: str, now: datetime) -> None:
    out.answered_step = "hold"
    out.says.append(
        Say("hold", "ask", {"hold_remaining": format_remaining(facts.hold_remaining_s(protocol, now))})
    )
    out.asked = True


def _after_hold(
    out: Interpretation, facts: SessionFacts, protocol: Protocol, text: str, now: datetime
) -> None:
    t = normalise(text)
    if parse_yes_no(t) is True or re.search(r"\b(?:spat|spit|swallowed|did it|done)\b", t):
        facts.after_hold_done = True
        out.answered_step = "after_hold"
        out.events.append(Event.HOLD_COMPLETE)


def _checkin(out: Interpretation, facts: SessionFacts, protocol: Protocol, text: str, now: datetime) -> None:
    out.answered_step = "checkin"
    out.asked = True
    if _READY.search(normalise(text)):
        out.says.append(Say("not_yet", "ok"))
        return
    out.says.append(Say("checkin", "variants", variant=facts.peak_checkins))
    facts.peak_checkins += 1


def _ready(out: Interpretation, facts: SessionFacts, protocol: Protocol, text: str, now: datetime) -> None:
    t = normalise(text)
    if _READY.search(t) or parse_yes_no(t) is True:
        facts.ready_for_integration = True
        out.answered_step = "ready"
        out.events.append(Event.PEAK_COMPLETE)
        return
    out.answered_step = "ready"
    facts.peak_checkins += 1
    out.says.append(Say("checkin", "variants", variant=facts.peak_checkins))
    out.says.append(Say("ready_reask", "ok"))
    out.asked = True


def _exercises(
    out: Interpretation, facts: SessionFacts, protocol: Protocol, text: str, now: datetime
) -> None:
    t = normalise(text)
    offered = facts.exercises_offered
    choice: int | None = None
    match = re.match(r"^\s*(?:#|number\s*|option\s*)?(\d)\b", t)
    if match:
        choice = int(match.group(1))
    else:
        for word, number in (("first", 1), ("second", 2), ("third", 3), ("one", 1), ("two", 2), ("three", 3)):
            if re.search(rf"\b{word}\b", t):
                choice = number
                break
    if choice is not None and 1 <= choice <= len(offered):
        facts.exercise_chosen = offered[choice - 1]
        facts.exercise_step_done = True
        out.answered_step = "exercises"
        out.events.append(Event.INTEGRATION_COMPLETE)
        return
    if _NONE.match(t) or not offered:
        facts.exercise_step_done = True
        out.answered_step = "exercises"
        out.says.append(Say("exercises", "declined"))
        out.events.append(Event.INTEGRATION_COMPLETE)


_HANDLERS: dict[str, Any] = {
    "companion_present": _yes_no_step("companion_present", "if_no"),
    "companion_name": _yes_no_step("companion_name_confirmed", "if_no"),
    "bp": _bp,
    "substances": _yes_no_step(
        "no_substances",
        "if_yes",
        hold_on=True,
        hold_reason="alcohol, cannabis or sedatives within the window",
    ),
    "fasting": _yes_no_step("fasting_ok", "if_no", hold_on=False, hold_reason="fasting window not kept"),
    "setting": _yes_no_step("setting_safe", "if_no"),
    "dose_confirm": _yes_no_step(
        "dose_confirmed", "if_no", hold_on=False, hold_reason="medicine does not match the prescription"
    ),
    "intention": _free_text("intention", "ok"),
    "baseline_suds": _rating("baseline_suds", 100, MeasurementKind.SUDS, "baseline"),
    "baseline_ocd_vas": _rating("baseline_ocd_vas", 10, MeasurementKind.OCD_VAS, "baseline"),
    "place_dose": _place_dose,
    "hold": _hold,
    "after_hold": _after_hold,
    "checkin": _checkin,
    "ready": _ready,
    "reflection": _free_text("reflection", "ok"),
    "post_suds": _rating("post_suds", 100, MeasurementKind.SUDS, "post_session"),
    "post_ocd_vas": _rating("post_ocd_vas", 10, MeasurementKind.OCD_VAS, "post_session"),
    "exercises": _exercises,
}


def format_remaining(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    if minutes and secs:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes} min" if minutes else f"{secs} s"


def companion_message_effect(facts: SessionFacts, protocol: Protocol, phase: Phase, text: str) -> str | None:
    """What a companion's message does: confirm presence/name, or nothing. Returns the step answered."""
    t = normalise(text)
    if phase is Phase.PRE_SESSION and facts.companion_present is not True:
        facts.companion_present = True
        if protocol.companion_name.lower() in t:
            facts.companion_name_confirmed = True
        return "companion_present"
    if (
        phase is Phase.PRE_SESSION
        and facts.companion_name_confirmed is not True
        and protocol.companion_name.lower() in t
    ):
        facts.companion_name_confirmed = True
        return "companion_name"
    return None


_ACK = re.compile(
    r"^\s*(?:/?ack|acknowledged?|ok|okay|got it|on it|seen|i'?m (?:here|with (?:her|him|them))|coming)\b"
)


def is_companion_ack(text: str) -> bool:
    return bool(_ACK.match(normalise(text)))
