"""Integration offers from the Chroma exercise library (``ketai.retrieval``).

The exercises offered are for the following days (the prompt says so), so
the patient is not treated as sedated for ranking; dosing-day limits still
apply to anything timed for the same evening.
"""

from __future__ import annotations

import logging

from ketai.guardrails.base import SafetyMemory
from ketai.models import SignalName
from ketai.offers import Offer, recently_assigned
from ketai.settings import Settings
from ketai.store.base import SessionRecord, TranscriptStore

log = logging.getLogger(__name__)
MAX_OFFERS = 3


def _suicide_risk_open(memory: SafetyMemory) -> bool:
    return any(e.signal in (SignalName.SUICIDE_RISK, SignalName.SELF_HARM) for e in memory.risk_events)


class RetrievalOfferer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def offer(self, session: SessionRecord, store: TranscriptStore) -> list[Offer]:
        from ketai.retrieval.index import default_index
        from ketai.retrieval.ranking import PatientContext, recommend

        facts = session.facts
        query = (
            " ".join(part for part in (facts.reflection, facts.intention) if part) or "integration practice"
        )
        context = PatientContext.from_protocol(
            session.protocol,
            current_suds=facts.post_suds,
            sedated=False,
            dosing_day=True,
            suicide_risk_open=_suicide_risk_open(session.memory),
            companion_available=bool(facts.companion_present),
            therapist_hierarchy_on_file=session.protocol.therapist_hierarchy_on_file,
            recently_assigned=recently_assigned(session, store),
        )
        try:
            ranked = recommend(query, context, k=MAX_OFFERS, index=default_index(self._settings))
        except Exception as exc:
            log.warning("exercise retrieval failed: %s", exc)
            return []
        return [
            Offer(id=r.exercise.id, title=r.exercise.title, summary=r.exercise.summary, reasons=r.reasons)
            for r in ranked
        ]
