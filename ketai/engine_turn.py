"""``TurnWork``: how one incoming message moves the session (answers, companion messages, phases).

See ``ketai/engine_state.py`` for the collected state and ``ketai/engine_safety.py`` for the safety steps.
"""

from __future__ import annotations

from ketai.dialogue import (
    FREE_TEXT_STEPS,
    Say,
    ask,
    companion_message_effect,
    current_step,
    format_remaining,
    interpret_patient,
    is_companion_ack,
)
from ketai.engine_safety import SafetySteps
from ketai.errors import InvalidTransition
from ketai.machine import Event, GuardContext, resolve
from ketai.models import TERMINAL_PHASES, Assessment, EscalationLevel, Phase, Role
from ketai.replies import TransitionInfo
from ketai.sanitize import SCREEN_WINDOW_CHARS
from ketai.store.base import TurnRecord

_ACTIVE = (Phase.PRE_SESSION, Phase.DOSING, Phase.PEAK, Phase.INTEGRATION)


class TurnWork(SafetySteps):
    # -- incoming -------------------------------------------------------------

    def handle_incoming(self, incoming: TurnRecord) -> None:
        self.session.last_seq = max(self.session.last_seq, incoming.seq)
        phase = self.session.phase
        if phase in TERMINAL_PHASES:
            self.incoming = incoming
            self.says.append(Say("session_over", "ok"))
            return
        assessment = self.guardrails.screen_input(
            incoming.text[:SCREEN_WINDOW_CHARS], phase=phase, role=incoming.role, memory=self.session.memory
        )
        assessment = self._protocol_bp(assessment, incoming)
        self.assessment = assessment
        self.session.memory = self.guardrails.remember(self.session.memory, assessment, phase=phase)
        self.incoming = incoming.model_copy(update={"assessment": assessment})
        if "long_message" in incoming.meta.get("notes", []):
            self.says.append(Say("too_long", "ok"))
        if any(n.startswith("unreadable") for n in incoming.meta.get("notes", [])):
            self.says.append(Say("unreadable_input", "ok"))
        self.session.highest_escalation = EscalationLevel.highest(
            [self.session.highest_escalation, assessment.level]
        )
        actions = self.guardrails.actions_for(
            assessment, phase=phase, role=incoming.role, locale=self.session.protocol.locale
        )
        self.apply_actions(actions, assessment)
        if self.session.phase is Phase.SAFETY_HOLD:
            if phase is Phase.SAFETY_HOLD and not self.safety_messages:
                self.says.append(Say("safety_hold", "ok"))
            return
        if incoming.role is Role.PATIENT and self._suicide_screen(
            incoming.text, actions.start_suicide_screen
        ):
            return
        interrupted = actions.patient_text is not None and not self._free_text_answer(assessment)
        if incoming.role is Role.COMPANION:
            self._companion(incoming.text)
        elif incoming.role is Role.PATIENT and not interrupted:
            self._patient(incoming.text)
        self.ensure_asked()

    def _free_text_answer(self, assessment: Assessment) -> bool:
        """An intention or reflection that mentions an effect is still the answer (after the safety text).

        Reflections naturally talk about nausea, fear or reassurance urges; re-asking would loop. Anything
        at clinician level or above is not taken as an answer: it is handled first and the question returns.
        """
        step = current_step(self.session.phase, self.session.facts, self.session.protocol, self.now)
        return step in FREE_TEXT_STEPS and assessment.level <= EscalationLevel.COMPANION

    def _patient(self, text: str) -> None:
        facts = self.session.facts
        before = facts.exercise_chosen
        out = interpret_patient(self.session.phase, facts, self.session.protocol, text, self.now)
        for kind, value, label in out.measurements:
            self.event("measurement", {"kind": kind.value, "value": value, "label": label})
        self.says += out.says
        self.asked = self.asked or out.asked
        if out.hold_reason:
            self.hold(out.hold_reason, notice_level=EscalationLevel.CLINICIAN)
            return
        if facts.exercise_chosen and facts.exercise_chosen != before:
            title = self._offered_title(facts.exercise_chosen)
            self.event("exercise_chosen", {"id": facts.exercise_chosen, "title": title})
            self.says.append(Say("exercises", "chosen", {"exercise_title": title}))
        for event in out.events:
            reason = out.abort_reason if event is Event.ABORT else f"patient answered {out.answered_step}"
            self.fire(event, reason or event.value)
        if (
            self.session.phase is Phase.PRE_SESSION
            and current_step(Phase.PRE_SESSION, facts, self.session.protocol, self.now) is None
        ):
            self.fire(Event.CHECKLIST_COMPLETE, "pre-session checklist complete")

    def _companion(self, text: str) -> None:
        if self.session.pending_alerts and is_companion_ack(text):
            self.event("companion_ack", {"alerts": len(self.session.pending_alerts)})
            self.session.pending_alerts = []
            self.says.append(Say("companion_ack", "ok", audience="companion"))
            self.asked = True
            return
        step = companion_message_effect(self.session.facts, self.session.protocol, self.session.phase, text)
        if step is not None:
            self.says.append(Say("companion_present_confirmed", "ok", audience="companion"))
            if (
                self.session.phase is Phase.PRE_SESSION
                and current_step(Phase.PRE_SESSION, self.session.facts, self.session.protocol, self.now)
                is None
            ):
                self.fire(Event.CHECKLIST_COMPLETE, "pre-session checklist complete")
            return
        self.says.append(Say("companion_noted", "ok", audience="companion"))
        self.asked = True

    # -- phases ------------------------------------------------------------------

    def fire(self, event: Event, reason: str) -> None:
        source = self.session.phase
        try:
            target = resolve(source, event, GuardContext(self.session.facts, self.session.protocol, self.now))
        except InvalidTransition as exc:
            self.event("transition_refused", {"event": event.value, "reason": str(exc)})
            return
        if target is Phase.SAFETY_HOLD:
            self.session.facts.phase_before_hold = source
            self.session.facts.hold_reason = reason
        self.session.phase = target
        info = TransitionInfo(
            from_phase=source, to_phase=target, event=event.value, reason=reason, at=self.now, seq=self.seq
        )
        self.transitions.append(info)
        self.event("transition", info.model_dump(mode="json"))
        self._on_enter(target)

    def fire_abort(self, reason: str) -> None:
        self.fire(Event.ABORT, reason)

    def clear_hold(self, clinician: str, note: str) -> None:
        self.session.facts.hold_cleared_by = clinician
        self.event("hold_cleared", {"clinician": clinician, "note": note})
        self.fire(Event.CLEAR_HOLD, f"cleared by {clinician}" + (f": {note}" if note else ""))
        self.session.facts.hold_cleared_by = None

    def _on_enter(self, phase: Phase) -> None:
        facts = self.session.facts
        if phase is Phase.DOSING:
            self.says += [
                Say("ready", "ok"),
                Say("companion_dosing", "ok", audience="companion"),
                Say("place_dose", "ask"),
            ]
        elif phase is Phase.PEAK:
            facts.peak_started_at = self.now
            facts.last_checkin_at = self.now
            self.says.append(Say("settle", "ok"))
        elif phase is Phase.INTEGRATION:
            self.says += [
                Say("start", "ok"),
                Say("companion_integration", "ok", audience="companion"),
                Say("reflection", "ask"),
            ]
        elif phase is Phase.COMPLETE:
            self.says += [Say("closing", "ok"), Say("companion_complete", "ok", audience="companion")]
        elif phase is Phase.SAFETY_HOLD:
            self.says.append(Say("safety_hold", "ok"))
        elif phase is Phase.PRE_SESSION:
            self.asked = False
            self.ensure_asked()
            return
        self.asked = True

    def ensure_asked(self) -> None:
        if self.asked or self.session.phase not in _ACTIVE:
            return
        step = current_step(self.session.phase, self.session.facts, self.session.protocol, self.now)
        if step is None:
            return
        self.asked = True
        if step == "checkin" and self.safety_messages:
            return  # at peak, fewer words: the safety text is the whole reply
        if step == "exercises":
            self._offer_exercises()
        elif step == "hold":
            remaining = format_remaining(self.session.facts.hold_remaining_s(self.session.protocol, self.now))
            self.says.append(Say("hold", "ask", {"hold_remaining": remaining}))
        else:
            self.says.append(ask(step, self.session.facts, self.session.protocol))

    def _offer_exercises(self) -> None:
        offers = self.offerer.offer(self.session, self.store) if self.offerer else []
        facts = self.session.facts
        if not offers:
            self.says.append(Say("exercises", "none_found"))
            facts.exercise_step_done = True
            self.event("exercise_offered", {"offers": []})
            self.fire(Event.INTEGRATION_COMPLETE, "no exercise fits right now")
            return
        facts.exercises_offered = [o.id for o in offers]
        self.event("exercise_offered", {"offers": [o.model_dump() for o in offers]})
        listing = "".join(f"\n  {i}. {o.title}: {o.summary}" for i, o in enumerate(offers, 1)) + "\n"
        self.says.append(Say("exercises", "ask", {"exercise_list": listing}))

    def _offered_title(self, exercise_id: str) -> str:
        for event in reversed(self.store.events(self.session.id)):
            if event.kind == "exercise_offered":
                for offer in event.data.get("offers", []):
                    if offer.get("id") == exercise_id:
                        return str(offer.get("title", exercise_id))
        return exercise_id

    def timed_prompts(self) -> None:
        facts, protocol = self.session.facts, self.session.protocol
        if self.session.phase is Phase.DOSING:
            waiting = facts.dose_placed_at and not facts.after_hold_done and not facts.after_hold_prompted
            if waiting and facts.hold_remaining_s(protocol, self.now) == 0:
                facts.after_hold_prompted = True
                self.says.append(ask("after_hold", facts, protocol))
        elif self.session.phase is Phase.PEAK:
            last = facts.last_checkin_at or facts.peak_started_at or self.now
            if (self.now - last).total_seconds() >= protocol.checkin_interval_minutes * 60:
                facts.peak_checkins += 1
                facts.last_checkin_at = self.now
                self.says.append(Say("companion_checkin", "ok", audience="companion"))
                self.event("checkin", {"count": facts.peak_checkins})
            if facts.peak_remaining_s(protocol, self.now) == 0 and not facts.ready_prompted:
                facts.ready_prompted = True
                self.says.append(Say("ready_prompt", "ok"))
