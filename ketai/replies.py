"""What ``SessionEngine`` returns to an interface after each turn."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from ketai.models import EscalationLevel, Phase


class ReplyMessage(BaseModel):
    text: str
    audience: str = "patient"
    """``patient`` or ``companion``."""
    kind: str = "script"
    """``safety`` (ladder text), ``script`` (responder), ``fallback`` (output policy replacement)."""
    prompt_id: str | None = None
    prompt_version: int | None = None


class TransitionInfo(BaseModel):
    from_phase: Phase
    to_phase: Phase
    event: str
    reason: str
    at: datetime
    seq: int


class Reply(BaseModel):
    session_id: str
    seq: int
    """Seq of the last stored turn."""
    phase: Phase
    messages: list[ReplyMessage] = Field(default_factory=list)
    level: EscalationLevel = EscalationLevel.NONE
    signals: list[str] = Field(default_factory=list)
    transitions: list[TransitionInfo] = Field(default_factory=list)
    awaiting: str | None = None
    """The step waiting for an answer (for interfaces and simulated patients)."""
    hold_remaining_s: float | None = None
    peak_remaining_s: float | None = None
    pending_companion_alerts: int = 0
    notes: list[str] = Field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(m.text for m in self.messages)
