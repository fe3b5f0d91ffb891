"""The escalation ladder: ``Assessment`` -> ``EscalationActions``, entirely from ``guardrails/ladder.yaml``
and the clinician-written texts. Deterministic: the same assessment always gives the same text.

Also: what happens when a companion alert is not acknowledged in time (``ack_timeout_actions``), and the
ERP-style replies for reassurance seeking (varying with the repeat count) and intrusive thoughts.
"""

from __future__ import annotations

from pydantic import BaseModel

from ketai.guardrails.base import EscalationActions
from ketai.guardrails.loader import GuardrailContent
from ketai.guardrails.memory import reassurance_info
from ketai.guardrails.schema import phase_key
from ketai.models import Assessment, EscalationLevel, Phase, Role, Signal, SignalName

_HOLD_TEXT_IDS = frozenset({"companion_absent", "substance_mix", "dosing_request", "dosing_hold"})


class AckTimeoutActions(BaseModel):
    """What to do when a companion alert at ``level`` was not acknowledged within ``timeout_s``."""

    level: EscalationLevel
    escalate_to: EscalationLevel
    resend_alert: bool
    clinician_notice: bool
    patient_text: str | None
    reason: str
    timeout_s: float


class Ladder:
    def __init__(self, content: GuardrailContent, ack_timeout_s: float) -> None:
        self.content = content
        self.ack_timeout_s = ack_timeout_s
        self.priority = {name: spec.priority for name, spec in content.signals.signals.items()}

    # -- text helpers ---------------------------------------------------------------------------

    def locale_values(self, locale: str) -> dict[str, str]:
        crisis = self.content.crisis
        entry = crisis.locales.get(locale.upper()) or crisis.locales[crisis.fallback_locale]
        values = {
            "emergency_number": entry.emergency_number,
            "crisis_line": entry.crisis_line,
            "text_line": entry.text_line,
        }
        values["crisis_block"] = entry.block.format(**values)
        return values

    def text(self, text_id: str, role: Role, locale: str) -> str:
        to_patient, to_companion = self.content.texts[text_id]
        template = to_companion if role == Role.COMPANION else to_patient
        return template.format(**self.locale_values(locale))

    def alert(self, alert_id: str, locale: str) -> str:
        return self.content.alerts[alert_id].format(**self.locale_values(locale))

    def reassurance_reply(self, topic: str, repeat: int) -> str:
        """ERP-consistent reply: declines the certainty; firmer with each repeat (1 = first time)."""
        replies = self.content.erp.reassurance.get(topic) or self.content.erp.reassurance["general"]
        return replies[min(max(repeat, 1), len(replies)) - 1]

    def intrusive_reply(self, repeat: int = 1) -> str:
        replies = self.content.erp.intrusive_thought
        return replies[(max(repeat, 1) - 1) % len(replies)]

    # -- actions --------------------------------------------------------------------------------

    def lead_signal(self, assessment: Assessment) -> Signal | None:
        at_level = [s for s in assessment.signals if s.level == assessment.level]
        if not at_level:
            return None
        return max(at_level, key=lambda s: self.priority.get(s.name, 0))

    def actions_for(
        self, assessment: Assessment, *, phase: Phase | None, role: Role, locale: str
    ) -> EscalationActions:
        level = assessment.level
        ladder = self.content.ladder
        per_level = ladder.levels[level]
        lead = self.lead_signal(assessment)
        actions = EscalationActions(
            level=level,
            clinician_notice=per_level.clinician_notice,
            safety_hold=per_level.safety_hold,
            companion_ack_required=per_level.ack_required,
            start_suicide_screen=any(
                ladder.signals[s.name].start_suicide_screen
                for s in assessment.signals
                if s.name in ladder.signals
            ),
        )
        text_id, alert_id = self._choose(lead, level)
        if per_level.companion_alert and alert_id:
            actions.companion_alert = self.alert(alert_id, locale)
        patient_text = self.text(text_id, role, locale) if text_id else None
        if lead is not None and lead.level == EscalationLevel.MONITOR and text_id is None:
            patient_text, text_id = self._monitor_reply(assessment, lead)
        block = ladder.block_dosing
        if phase_key(phase) in block.phases and any(
            s.name in block.signals and s.level >= block.min_level for s in assessment.signals
        ):
            actions.block_dosing = True
            if text_id not in _HOLD_TEXT_IDS:
                hold = self.text("dosing_hold", role, locale)
                patient_text = f"{patient_text} {hold}" if patient_text else hold
                text_id = f"{text_id}+dosing_hold" if text_id else "dosing_hold"
        actions.patient_text = patient_text
        actions.patient_text_id = text_id
        return actions

    def _choose(self, lead: Signal | None, level: EscalationLevel) -> tuple[str | None, str | None]:
        ladder = self.content.ladder
        if lead is None:
            return ladder.default_texts.get(level), ladder.default_alerts.get(level)
        spec = ladder.signals.get(lead.name)
        text_id = spec.texts.get(level) if spec else None
        alert_id = spec.alerts.get(level) if spec else None
        if lead.name == SignalName.ADVERSE_EFFECT and lead.evidence.startswith("blood pressure"):
            text_id, alert_id = "bp_high", "alert_bp"
        if text_id is None and level > EscalationLevel.MONITOR:
            text_id = ladder.default_texts.get(level)
        if alert_id is None:
            alert_id = ladder.default_alerts.get(level)
        return text_id, alert_id

    def _monitor_reply(self, assessment: Assessment, lead: Signal) -> tuple[str | None, str | None]:
        if lead.name == SignalName.REASSURANCE_SEEKING:
            topic, repeat = reassurance_info(assessment) or ("general", 1)
            return self.reassurance_reply(topic, repeat), f"erp_reassurance:{topic}:{min(repeat, 3)}"
        if lead.name == SignalName.INTRUSIVE_THOUGHT:
            return self.intrusive_reply(), "erp_intrusive_thought"
        return None, None

    def ack_timeout_actions(
        self, level: EscalationLevel, *, role: Role = Role.PATIENT, locale: str = "US"
    ) -> AckTimeoutActions:
        timeout = self.content.ladder.ack_timeout.get(level)
        if timeout is None:
            return AckTimeoutActions(
                level=level,
                escalate_to=level,
                resend_alert=False,
                clinician_notice=False,
                patient_text=None,
                reason="no companion alert at this level",
                timeout_s=self.ack_timeout_s,
            )
        text = self.text(timeout.patient_text, role, locale) if timeout.patient_text else None
        return AckTimeoutActions(
            level=level,
            escalate_to=timeout.escalate_to,
            resend_alert=timeout.resend_alert,
            clinician_notice=timeout.clinician_notice,
            patient_text=text,
            reason=timeout.reason,
            timeout_s=self.ack_timeout_s,
        )
