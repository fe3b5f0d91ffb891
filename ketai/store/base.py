"""Records and the ``TranscriptStore`` protocol every storage engine implements.

Durability contract (relied on by the engine's resume logic):

* ``append_incoming`` commits the incoming message before anything else runs.
* ``commit_turn`` commits, in one transaction, the replies, the events, the
  notices and the new session state, and rewrites the incoming message as
  answered (with its assessment).
* After a crash between the two, ``pending_incoming`` returns the unanswered
  message so the engine processes it exactly once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from ketai.facts import SessionFacts
from ketai.guardrails.base import SafetyMemory
from ketai.models import Assessment, EscalationLevel, Phase, Role
from ketai.models import Protocol as PatientProtocol


class SessionRecord(BaseModel):
    id: str
    patient_id: str
    protocol: PatientProtocol
    phase: Phase = Phase.PRE_SESSION
    facts: SessionFacts = Field(default_factory=SessionFacts)
    memory: SafetyMemory = Field(default_factory=SafetyMemory)
    suicide_screen: dict[str, Any] | None = None
    """Serialised suicide-screen state while the screening questions are being asked."""
    pending_alerts: list[dict[str, Any]] = Field(default_factory=list)
    """Companion alerts waiting for acknowledgement (level, text, sent_at)."""
    highest_escalation: EscalationLevel = EscalationLevel.NONE
    last_seq: int = 0
    created_at: datetime
    updated_at: datetime


class TurnRecord(BaseModel):
    session_id: str
    seq: int
    role: Role
    text: str
    phase: Phase
    created_at: datetime
    prompt_id: str | None = None
    prompt_version: int | None = None
    assessment: Assessment | None = None
    answered: bool = False
    meta: dict[str, Any] = Field(default_factory=dict)


class EventRecord(BaseModel):
    session_id: str
    seq: int
    """The turn seq this event belongs to."""
    kind: str
    """transition, escalation, companion_alert, companion_ack, measurement, exercise_offered,
    exercise_chosen, output_replaced, clinician_notice, suicide_screen, safety_hold, ..."""
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class NoticeRecord(BaseModel):
    """A clinician notice in the outbox: stored with the turn, delivered after commit."""

    id: int | None = None
    session_id: str
    seq: int
    payload: dict[str, Any]
    created_at: datetime
    delivered_at: datetime | None = None
    last_error: str | None = None


class TranscriptStore(Protocol):
    def create_session(self, session: SessionRecord) -> None: ...

    def get_session(self, session_id: str) -> SessionRecord: ...

    def list_sessions(self) -> list[SessionRecord]: ...

    def append_incoming(self, turn: TurnRecord) -> None: ...

    def pending_incoming(self, session_id: str) -> TurnRecord | None: ...

    def commit_turn(
        self,
        session: SessionRecord,
        answered: TurnRecord | None,
        turns: list[TurnRecord],
        events: list[EventRecord],
        notices: list[NoticeRecord],
    ) -> None: ...

    def turns(self, session_id: str) -> list[TurnRecord]: ...

    def events(self, session_id: str) -> list[EventRecord]: ...

    def undelivered_notices(self, session_id: str | None = None) -> list[NoticeRecord]: ...

    def mark_notice(self, notice_id: int, *, delivered_at: datetime | None, error: str | None) -> None: ...

    def close(self) -> None: ...
