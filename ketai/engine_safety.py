"""Safety steps of a turn: protocol BP judgement, the suicide screen, ladder actions, notices, holds."""

from __future__ import annotations

from datetime import datetime

from ketai.dialogue import current_step
from ketai.engine_state import TurnState
from ketai.guardrails.base import EscalationActions
from ketai.machine import Event
from ketai.models import Assessment, EscalationLevel, Phase, Role, Signal, SignalName
from ketai.parsing import parse_blood_pressure
from ketai.replies import ReplyMessage
from ketai.screen_flow import ScreenStep, answer_screen, load_progress, start_screen
from ketai.store.base import TurnRecord


class SafetySteps(TurnState):
    """The safety half of a turn; every action comes from the ladder's clinician-written data."""

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
