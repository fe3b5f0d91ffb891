"""The phase machine: the transition table, its guards, and random event sequences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketai.content.protocols import load_protocol
from ketai.errors import InvalidTransition
from ketai.facts import BPReading, SessionFacts
from ketai.machine import TRANSITIONS, Event, GuardContext, allowed_events, resolve, to_mermaid
from ketai.models import Phase

PROTOCOL = load_protocol()
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def ready_facts(**changes: object) -> SessionFacts:
    facts = SessionFacts(
        companion_present=True, companion_name_confirmed=True,
        bp_readings=[BPReading(systolic=126, diastolic=80, at=T0)], no_substances=True, fasting_ok=True,
        setting_safe=True, dose_confirmed=True, intention="stay with the doubt", baseline_suds=40,
        baseline_ocd_vas=5,
    )  # fmt: skip
    return facts.model_copy(update=changes)


def ctx(facts: SessionFacts, minutes: float = 0) -> GuardContext:
    return GuardContext(facts=facts, protocol=PROTOCOL, now=T0 + timedelta(minutes=minutes))


# (phase, event, facts, minutes after T0, expected phase or the error fragment)
CASES: list[tuple[Phase, Event, SessionFacts, float, Phase | str]] = [
    (Phase.PRE_SESSION, Event.CHECKLIST_COMPLETE, ready_facts(), 0, Phase.DOSING),
    (Phase.PRE_SESSION, Event.CHECKLIST_COMPLETE, ready_facts(companion_present=None), 0, "companion present"),
    (Phase.PRE_SESSION, Event.CHECKLIST_COMPLETE, ready_facts(companion_name_confirmed=False), 0, "companion named"),
    (Phase.PRE_SESSION, Event.CHECKLIST_COMPLETE, ready_facts(bp_readings=[]), 0, "blood pressure recorded"),
    (
        Phase.PRE_SESSION, Event.CHECKLIST_COMPLETE,
        ready_facts(bp_readings=[BPReading(systolic=150, diastolic=95, at=T0)]), 0, "blood pressure within 140/90",
    ),
    (Phase.PRE_SESSION, Event.CHECKLIST_COMPLETE, ready_facts(no_substances=False), 0, "no alcohol"),
    (Phase.PRE_SESSION, Event.CHECKLIST_COMPLETE, ready_facts(fasting_ok=None), 0, "fasting"),
    (Phase.PRE_SESSION, Event.CHECKLIST_COMPLETE, ready_facts(dose_confirmed=False), 0, "dose confirmed"),
    (Phase.PRE_SESSION, Event.CHECKLIST_COMPLETE, ready_facts(setting_safe=None), 0, "safe setting"),
    (Phase.PRE_SESSION, Event.CHECKLIST_COMPLETE, ready_facts(baseline_suds=None), 0, "baseline distress"),
    (Phase.PRE_SESSION, Event.HOLD_COMPLETE, ready_facts(), 0, "not allowed in phase 'pre_session'"),
    (Phase.DOSING, Event.HOLD_COMPLETE, ready_facts(), 30, "not been placed"),
    (Phase.DOSING, Event.HOLD_COMPLETE, ready_facts(dose_placed_at=T0, after_hold_done=True), 14, "hold time not over"),
    (Phase.DOSING, Event.HOLD_COMPLETE, ready_facts(dose_placed_at=T0), 15, "not confirmed the spit step"),
    (Phase.DOSING, Event.HOLD_COMPLETE, ready_facts(dose_placed_at=T0, after_hold_done=True), 15, Phase.PEAK),
    (Phase.PEAK, Event.PEAK_COMPLETE, ready_facts(peak_started_at=T0, peak_checkins=2,
                                                   ready_for_integration=True), 59, "minimum peak time"),
    (Phase.PEAK, Event.PEAK_COMPLETE, ready_facts(peak_started_at=T0, ready_for_integration=True), 60, "check-in"),
    (Phase.PEAK, Event.PEAK_COMPLETE, ready_facts(peak_started_at=T0, peak_checkins=1), 60, "not said they are ready"),
    (Phase.PEAK, Event.PEAK_COMPLETE, ready_facts(peak_started_at=T0, peak_checkins=1,
                                                   ready_for_integration=True), 60, Phase.INTEGRATION),
    (Phase.INTEGRATION, Event.INTEGRATION_COMPLETE, ready_facts(), 0, "reflection"),
    (Phase.INTEGRATION, Event.INTEGRATION_COMPLETE, ready_facts(reflection="calm", post_suds=20, post_ocd_vas=2,
                                                                exercise_step_done=True), 0, Phase.COMPLETE),
    (Phase.PEAK, Event.SAFETY_HOLD, ready_facts(), 0, Phase.SAFETY_HOLD),
    (Phase.PRE_SESSION, Event.SAFETY_HOLD, ready_facts(), 0, Phase.SAFETY_HOLD),
    (Phase.SAFETY_HOLD, Event.CLEAR_HOLD, ready_facts(), 0, "only a clinician"),
    (Phase.SAFETY_HOLD, Event.CLEAR_HOLD, ready_facts(hold_cleared_by="Dr X"), 0, Phase.PRE_SESSION),
    (Phase.SAFETY_HOLD, Event.CLEAR_HOLD, ready_facts(hold_cleared_by="Dr X", dose_placed_at=T0), 0, Phase.INTEGRATION),
    (Phase.SAFETY_HOLD, Event.CHECKLIST_COMPLETE, ready_facts(), 0, "not allowed"),
    (Phase.PEAK, Event.ABORT, ready_facts(), 0, "not allowed"),
    (Phase.PRE_SESSION, Event.ABORT, ready_facts(), 0, Phase.ABORTED),
    (Phase.COMPLETE, Event.SAFETY_HOLD, ready_facts(), 0, "not allowed"),
    (Phase.ABORTED, Event.CLEAR_HOLD, ready_facts(), 0, "not allowed"),
]  # fmt: skip


@pytest.mark.parametrize(("phase", "event", "facts", "minutes", "expected"), CASES)
def test_transition_table(
    phase: Phase, event: Event, facts: SessionFacts, minutes: float, expected: Phase | str
) -> None:
    if isinstance(expected, Phase):
        assert resolve(phase, event, ctx(facts, minutes)) is expected
    else:
        with pytest.raises(InvalidTransition, match=expected):
            resolve(phase, event, ctx(facts, minutes))


def test_every_active_phase_can_enter_safety_hold_and_terminal_phases_cannot_move() -> None:
    for phase in (Phase.PRE_SESSION, Phase.DOSING, Phase.PEAK, Phase.INTEGRATION):
        assert Event.SAFETY_HOLD in allowed_events(phase)
    assert allowed_events(Phase.COMPLETE) == [] and allowed_events(Phase.ABORTED) == []


def test_mermaid_is_generated_from_the_table() -> None:
    diagram = to_mermaid()
    assert diagram.startswith("stateDiagram-v2")
    for t in TRANSITIONS:
        assert f"{t.source.value} --> {t.target.value}: {t.event.value}" in diagram


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(list(Event)), st.floats(0, 90)), max_size=25),
    st.booleans(),
)
def test_random_event_sequences_never_skip_dosing_guards(
    events: list[tuple[Event, float]], checklist: bool
) -> None:
    """Whatever events arrive, the machine never reaches peak without dose + hold, nor dosing without checklist."""
    facts = ready_facts() if checklist else SessionFacts()
    phase = Phase.PRE_SESSION
    minutes = 0.0
    visited = [phase]
    for event, step in events:
        minutes += step
        try:
            new = resolve(phase, event, ctx(facts, minutes))
        except InvalidTransition:
            continue
        if new is Phase.DOSING:
            assert not facts.checklist_missing(PROTOCOL)
        if new is Phase.PEAK:
            assert facts.dose_placed_at is not None
        phase = new
        visited.append(phase)
        if phase is Phase.DOSING:
            facts = facts.model_copy(
                update={"dose_placed_at": T0 + timedelta(minutes=minutes), "after_hold_done": True}
            )
    if not checklist:
        assert Phase.DOSING not in visited and Phase.PEAK not in visited
    if Phase.COMPLETE in visited:
        assert visited.index(Phase.PEAK) < visited.index(Phase.INTEGRATION) < visited.index(Phase.COMPLETE)
