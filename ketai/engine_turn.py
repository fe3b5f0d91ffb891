"""``TurnWork``: everything one turn changes, collected before a single commit.

The engine builds one per turn from a deep copy of the session; nothing is
written until ``SessionEngine._finish`` commits it all in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
from ketai.errors import InvalidTransition
from ketai.guardrails.base import EscalationActions, Guardrails
from ketai.guardrails.schema_texts import SuicideScreenFile
from ketai.machine import Event, GuardContext, resolve
from ketai.models import TERMINAL_PHASES, Assessment, EscalationLevel, Phase, Role, Signal, SignalName
from ketai.offers import ExerciseOfferer
from ketai.parsing import parse_blood_pressure
from ketai.replies import Reply, ReplyMessage, TransitionInfo
from ketai.responders.base import Draft
from ketai.sanitize import SCREEN_WINDOW_CHARS
from ketai.screen_flow import ScreenStep, answer_screen, load_progress, start_screen
from ketai.store.base import EventRecord, NoticeRecord, SessionRecord, TranscriptStore, TurnRecord
from ketai.verdict_cache import VerdictCache

_NOTIFY_ON_REPLACE = frozenset({"dose_advice", "medication_advice"})
_ACTIVE = (Phase.PRE_SESSION, Phase.DOSING, Phase.PEAK, Phase.INTEGRATION)


@dataclass
class TurnWork:
    session: SessionRecord
    guardrails: Guardrails
    offerer: ExerciseOfferer | None
    store: TranscriptStore
    now: datetime
    ack_timeout_s: float
    screen_spec: SuicideScreenFile | None = None
    content_versions: dict[str, int] = field(default_factory=dict)
    output_screen: VerdictCache | None = None
    """Version of each guardrail content file (``ladder``, ``suicide_screen``, ``output_policy``)."""
    says: list[Say] = field(default_factory=list)
    safety_messages: list[ReplyMessage] = field(default_factory=list)
    messages: list[ReplyMessage] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    notices: list[NoticeRecord] = field(default_factory=list)
    new_turns: list[TurnRecord] = field(default_factory=list)
    transitions: list[TransitionInfo] = field(default_factory=list)
    assessment: Assessment | None = None
    incoming: TurnRecord | None = None
    asked: bool = False

    @property
    def incoming_text(self) -> str | None:
        return self.incoming.text if self.incoming else None

    @property
    def seq(self) -> int:
        return self.session.last_seq

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

    def _protocol_bp(self, assessment: Assessment, incoming: TurnRecord) -> Assessment:
        """At the pre-session BP step, a bare reading is judged by the patient's protocol, not generic cut-offs.

        The dialogue applies the clinic's per-patient thresholds (retake once, then hold and notify the
        clinician). A generic blood-pressure signal is kept only when the reading reaches the protocol's
        emergency thresholds, or when anything else was detected alongside it.
        """
        if self.session.phase is not Phase.PRE_SESSION or incoming.role is not Role.PATIENT:
            return assessment
        if current_step(Phase.PRE_SESSION, self.session.facts, self.session.protocol, self.now) != "bp":
            return assessment
        bp_only = [
            s
            for s in assessment.signals
            if s.name is SignalName.ADVERSE_EFFECT and s.evidence.startswith("blood pressure")
        ]
        if not bp_only or len(bp_only) != len(assessment.signals):
            return assessment
        reading = parse_blood_pressure(incoming.text)
        protocol = self.session.protocol
        if reading is None or (
            reading.systolic >= protocol.bp_emergency_systolic
            or reading.diastolic >= protocol.bp_emergency_diastolic
        ):
            return assessment
        note = "pre-session blood pressure judged against the protocol's thresholds by the checklist"
        return Assessment(signals=[], level=EscalationLevel.NONE, notes=[*assessment.notes, note])

    # -- suicide screen --------------------------------------------------------

    def _suicide_screen(self, text: str, start: bool) -> bool:
        """Start or continue the screening questions; True when this turn belonged to the screen."""
        if self.screen_spec is None:
            return False
        progress = load_progress(self.session.suicide_screen)
        if progress is None or progress.asking is None:
            if not start:
                return False
            progress, step = start_screen(self.screen_spec)
            self.event("suicide_screen", {"status": "started"})
        else:
            item = progress.asking
            progress, step = answer_screen(self.screen_spec, progress, text)
            self.event(
                "suicide_screen",
                {"status": "answer", "item": str(item), "answer": progress.state.answers.get(item)},
            )
        self.session.suicide_screen = None if step.finished else progress.model_dump(mode="json")
        for line in step.texts:
            self.safety_messages.append(
                ReplyMessage(
                    text=line,
                    kind="safety",
                    prompt_id="guardrails.suicide_screen",
                    prompt_version=self.content_versions.get("suicide_screen"),
                )
            )
        if step.finished:
            self._screen_finished(step)
            self.asked = False
            self.ensure_asked()  # back to where the session was
        else:
            self.asked = True
        return True

    def _screen_finished(self, step: ScreenStep) -> None:
        level = step.level or EscalationLevel.CLINICIAN
        self.event(
            "suicide_screen",
            {"status": "finished", "level": level.value, "band": step.band, "reasons": step.reasons},
        )
        self.session.highest_escalation = EscalationLevel.highest([self.session.highest_escalation, level])
        if level < EscalationLevel.CLINICIAN:
            return
        # The triage result goes through the same ladder data as any other signal.
        triaged = Signal(
            name=SignalName.SUICIDE_RISK,
            score=1.0,
            detector="suicide_screen",
            level=level,
            evidence=f"screen {step.band}: {', '.join(step.reasons)}",
        )
        assessment = Assessment(signals=[triaged], level=level)
        actions = self.guardrails.actions_for(
            assessment, phase=self.session.phase, role=Role.PATIENT, locale=self.session.protocol.locale
        )
        if level is EscalationLevel.CLINICIAN:
            # The screen's closing text already gives the crisis resources; keep the alert and the notice.
            actions = actions.model_copy(update={"patient_text": None})
        self.apply_actions(actions.model_copy(update={"start_suicide_screen": False}), assessment)

    # -- safety ----------------------------------------------------------------

    def apply_actions(self, actions: EscalationActions, assessment: Assessment) -> None:
        if assessment.signals:
            self.event(
                "assessment",
                {
                    "level": assessment.level.value,
                    "signals": [s.model_dump(mode="json") for s in assessment.signals],
                    "memory_note": assessment.memory_note,
                },
            )
        if actions.patient_text:
            self.safety_messages.append(
                ReplyMessage(
                    text=actions.patient_text,
                    kind="safety",
                    prompt_id=f"guardrails.ladder:{actions.patient_text_id or actions.level.value}",
                    prompt_version=self.content_versions.get("ladder"),
                )
            )
        if actions.companion_alert:
            self.safety_messages.append(
                ReplyMessage(
                    text=actions.companion_alert,
                    audience="companion",
                    kind="safety",
                    prompt_id=f"guardrails.alert:{actions.level.value}",
                    prompt_version=self.content_versions.get("ladder"),
                )
            )
            if actions.companion_ack_required:
                self.session.pending_alerts.append(
                    {
                        "level": actions.level.value,
                        "text": actions.companion_alert,
                        "sent_at": self.now.isoformat(),
                        "escalated": False,
                    }
                )
            self.event(
                "companion_alert",
                {"level": actions.level.value, "ack_required": actions.companion_ack_required},
            )
        if actions.clinician_notice:
            self.notice(actions.level, assessment)
        if actions.safety_hold:
            self.hold(f"{actions.level.value}: " + ", ".join(sorted(s.value for s in assessment.names())))
        elif actions.block_dosing and (
            self.session.phase is Phase.PRE_SESSION
            or (self.session.phase is Phase.DOSING and self.session.facts.dose_placed_at is None)
        ):
            self.hold("dosing blocked: " + ", ".join(sorted(s.value for s in assessment.names())))

    def notice(self, level: EscalationLevel, assessment: Assessment | None, reason: str = "") -> None:
        excerpt = (self.incoming.text[:280] if self.incoming else "") or reason
        payload: dict[str, Any] = {
            "session_id": self.session.id,
            "patient_id": self.session.patient_id,
            "turn_seq": self.seq,
            "level": level.value,
            "signals": sorted(s.value for s in assessment.names()) if assessment else [],
            "phase": self.session.phase.value,
            "excerpt": excerpt,
            "reason": reason,
            "created_at": self.now.isoformat(),
        }
        self.notices.append(
            NoticeRecord(session_id=self.session.id, seq=self.seq, payload=payload, created_at=self.now)
        )
        self.event("clinician_notice", {"level": level.value, "reason": reason})

    def hold(self, reason: str, notice_level: EscalationLevel | None = None) -> None:
        if self.session.phase is Phase.SAFETY_HOLD:
            return
        if notice_level is not None:
            self.notice(notice_level, self.assessment, reason)
        self.fire(Event.SAFETY_HOLD, reason)

    def escalate_unacknowledged_alerts(self) -> None:
        for alert in self.session.pending_alerts:
            sent = datetime.fromisoformat(alert["sent_at"])
            if alert.get("escalated") or (self.now - sent).total_seconds() < self.ack_timeout_s:
                continue
            alert["escalated"] = True
            level = EscalationLevel(alert["level"])
            raised = EscalationLevel.CLINICIAN if level < EscalationLevel.CLINICIAN else level
            self.event("companion_alert_unacknowledged", {"level": level.value, "raised_to": raised.value})
            self.notice(raised, None, f"companion alert not acknowledged after {self.ack_timeout_s:g} s")
            self.safety_messages.append(
                ReplyMessage(
                    text=alert["text"],
                    audience="companion",
                    kind="safety",
                    prompt_id="guardrails.alert:unacknowledged",
                    prompt_version=self.content_versions.get("ladder"),
                )
            )

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
        listing = "".join(f"\n  {i}. {o.title}: {o.summary}" for i, o in enumerate(offers, 1))
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

    # -- outputs -------------------------------------------------------------------

    def event(self, kind: str, data: dict[str, Any]) -> None:
        self.events.append(
            EventRecord(session_id=self.session.id, seq=self.seq, kind=kind, data=data, created_at=self.now)
        )

    def add_drafts(self, drafts: list[Draft]) -> None:
        self.messages = list(self.safety_messages)
        for draft in drafts:
            screen = self.output_screen.screen_output if self.output_screen else self.guardrails.screen_output
            verdict = screen(draft.text, phase=self.session.phase, assessment=self.assessment)
            if verdict.verdict == "replace":
                self.event("output_replaced", {"rules": verdict.rules, "prompt_id": draft.prompt_id})
                if _NOTIFY_ON_REPLACE & set(verdict.rules) and not self.notices:
                    # The fallback tells the patient the care team knows about the dose/medication question.
                    self.notice(
                        EscalationLevel.CLINICIAN, self.assessment, f"reply replaced: {verdict.rules}"
                    )
                self.messages.append(
                    ReplyMessage(
                        text=verdict.replacement or "",
                        audience=draft.audience,
                        kind="fallback",
                        prompt_id=f"guardrails.output_policy:{'+'.join(verdict.rules)}",
                        prompt_version=self.content_versions.get("output_policy"),
                    )
                )
            else:
                self.messages.append(
                    ReplyMessage(
                        text=draft.text,
                        audience=draft.audience,
                        kind="script",
                        prompt_id=draft.prompt_id,
                        prompt_version=draft.prompt_version,
                    )
                )

    def store_outputs(self) -> None:
        for message in self.messages:
            self.session.last_seq += 1
            self.new_turns.append(
                TurnRecord(
                    session_id=self.session.id,
                    seq=self.session.last_seq,
                    role=Role.KETAI,
                    text=message.text,
                    phase=self.session.phase,
                    created_at=self.now,
                    prompt_id=message.prompt_id,
                    prompt_version=message.prompt_version,
                    answered=True,
                    meta={"audience": message.audience, "kind": message.kind},
                )
            )
        self.session.updated_at = self.now

    def reply(self) -> Reply:
        return self._reply(self.messages)

    def reply_without_storing(self, drafts: list[Any]) -> Reply:
        messages = [
            ReplyMessage(
                text=d.text, audience=d.audience, prompt_id=d.prompt_id, prompt_version=d.prompt_version
            )
            for d in drafts
        ]
        return self._reply(messages)

    def _reply(self, messages: list[ReplyMessage]) -> Reply:
        facts, protocol = self.session.facts, self.session.protocol
        return Reply(
            session_id=self.session.id,
            seq=self.session.last_seq,
            phase=self.session.phase,
            messages=messages,
            level=self.assessment.level if self.assessment else EscalationLevel.NONE,
            signals=sorted(s.value for s in self.assessment.names()) if self.assessment else [],
            transitions=self.transitions,
            awaiting=current_step(self.session.phase, facts, protocol, self.now),
            hold_remaining_s=facts.hold_remaining_s(protocol, self.now) if facts.dose_placed_at else None,
            peak_remaining_s=facts.peak_remaining_s(protocol, self.now),
            pending_companion_alerts=len(self.session.pending_alerts),
        )
