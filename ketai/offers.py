"""Integration offers: the seam between the engine and the exercise retrieval layer."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from ketai.store.base import SessionRecord, TranscriptStore


class Offer(BaseModel):
    id: str
    title: str
    summary: str
    reasons: list[str] = []


class ExerciseOfferer(Protocol):
    def offer(self, session: SessionRecord, store: TranscriptStore) -> list[Offer]:
        """One to three exercises that fit what the patient said, their dimensions and SUDS."""
        ...


def recently_assigned(session: SessionRecord, store: TranscriptStore, sessions_back: int = 3) -> list[str]:
    """Exercise ids chosen in this patient's last few sessions (not repeated unless asked)."""
    earlier = [s for s in store.list_sessions() if s.patient_id == session.patient_id and s.id != session.id][
        -sessions_back:
    ]
    chosen: list[str] = []
    for other in earlier:
        chosen += [str(e.data.get("id")) for e in store.events(other.id) if e.kind == "exercise_chosen"]
    return chosen
