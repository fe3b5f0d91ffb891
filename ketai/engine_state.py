"""``TurnState``: what one turn changes, collected before a single commit, and the reply built from it.

The engine builds a ``TurnWork`` (``ketai/engine_turn.py``) per turn from a deep copy of the session;
nothing is written until ``SessionEngine._finish`` commits it all in one transaction. The layers:
``TurnState`` (data, events, outputs) <- ``SafetySteps`` (``ketai/engine_safety.py``) <- ``TurnWork``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ketai.dialogue import (
    Say,
    current_step,
)
from ketai.guardrails.base import Guardrails
from ketai.guardrails.schema_texts import SuicideScreenFile
from ketai.machine import Event
from ketai.models import Assessment, EscalationLevel, Role
from ketai.offers import ExerciseOfferer
from ketai.replies import Reply, ReplyMessage, TransitionInfo
from ketai.responders.base import Draft
from ketai.store.base import EventRecord, NoticeRecord, SessionRecord, TranscriptStore, TurnRecord
from ketai.verdict_cache import VerdictCache

_NOTIFY_ON_REPLACE = frozenset({"dose_advice", "medication_advice"})


@dataclass
class TurnState:
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

    def fire(self, event: Event, reason: str) -> None:
        raise NotImplementedError  # phase transitions live in TurnWork

    def ensure_asked(self) -> None:
        raise NotImplementedError  # the next question lives in TurnWork

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

    def reply_without_storing(self, drafts: list[Draft]) -> Reply:
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
