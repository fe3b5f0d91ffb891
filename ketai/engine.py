"""``SessionEngine``: the one place that wires the parts; every message takes the same trip.

    1. store.append_incoming(message)       durable before anything else
    2. guardrails.screen_input(...)         -> Assessment
    3. guardrails.actions_for(...)          deterministic safety actions (ladder data)
    4. dialogue + machine                   answer parsing, phase transitions
    5. responder.respond(...)               scripted (default) or LLM
    6. guardrails.screen_output(draft)      pass, or replace with a safe fallback
    7. store.commit_turn(...)               replies, events, notices, new state: one transaction

Safety actions (3) never wait for or depend on the responder (5).
Warning: notices are written to an outbox in step 7 and delivered after the
commit, so a crash can delay a notice but never lose it.
"""

from __future__ import annotations

import uuid
from typing import Any

from ketai.clock import Clock, SystemClock
from ketai.dialogue import Say, format_remaining
from ketai.engine_turn import TurnWork
from ketai.guardrails.base import Guardrails
from ketai.guardrails.schema_texts import SuicideScreenFile
from ketai.models import TERMINAL_PHASES, Protocol, Role
from ketai.notifying import NoticeSender
from ketai.offers import ExerciseOfferer
from ketai.replies import Reply
from ketai.responders.base import Draft, Responder, ResponderContext
from ketai.sanitize import clean_incoming
from ketai.store.base import SessionRecord, TranscriptStore, TurnRecord
from ketai.verdict_cache import VerdictCache


class SessionEngine:
    """Runs sessions turn by turn. Interfaces (CLI, web) only wrap this API."""

    def __init__(
        self,
        *,
        store: TranscriptStore,
        guardrails: Guardrails,
        responder: Responder,
        clock: Clock | None = None,
        notice_sender: NoticeSender | None = None,
        offerer: ExerciseOfferer | None = None,
        companion_ack_timeout_s: float = 180.0,
        locale_variables: dict[str, dict[str, str]] | None = None,
        screen_spec: SuicideScreenFile | None = None,
        content_versions: dict[str, int] | None = None,
    ) -> None:
        self.store = store
        self.guardrails = guardrails
        self.responder = responder
        self.clock = clock or SystemClock()
        self.notice_sender = notice_sender
        self.offerer = offerer
        self.companion_ack_timeout_s = companion_ack_timeout_s
        self.locale_variables = locale_variables or {}
        self.screen_spec = screen_spec
        self.content_versions = content_versions or {}
        self.output_screen = VerdictCache(guardrails)

    # -- public API ---------------------------------------------------------

    def start(self, protocol: Protocol, session_id: str | None = None) -> Reply:
        """Create a session and greet the patient (the welcome asks the first checklist question)."""
        now = self.clock.now()
        session = SessionRecord(
            id=session_id or f"s-{now:%Y%m%d}-{uuid.uuid4().hex[:8]}",
            patient_id=protocol.patient_id,
            protocol=protocol,
            created_at=now,
            updated_at=now,
        )
        self.store.create_session(session)
        work = self._work(session)
        work.says.append(Say("welcome", "ask"))
        return self._finish(work, incoming=None)

    def turn(self, session_id: str, role: Role | str, text: str) -> Reply:
        """Handle one message from the patient or the companion."""
        role = Role(role)
        if role not in (Role.PATIENT, Role.COMPANION, Role.CLINICIAN):
            raise ValueError(f"messages come from patient, companion or clinician, not {role.value}")
        self.resume(session_id)
        session = self.store.get_session(session_id)
        cleaned = clean_incoming(text)
        if cleaned.empty:
            work = self._work(session)
            work.says.append(Say("empty_input", "ok"))
            return work.reply_without_storing(self._render(work))
        incoming = TurnRecord(
            session_id=session.id,
            seq=session.last_seq + 1,
            role=role,
            text=cleaned.stored,
            phase=session.phase,
            created_at=self.clock.now(),
            meta={"notes": cleaned.notes} if cleaned.notes else {},
        )
        self.store.append_incoming(incoming)
        return self._process(session, incoming)

    def resume(self, session_id: str) -> Reply | None:
        """Finish a turn interrupted by a crash (stored but unanswered), and deliver late notices."""
        session = self.store.get_session(session_id)
        pending = self.store.pending_incoming(session_id)
        reply = None
        if pending is not None:
            reply = self._process(session, pending)
        self._deliver_notices(session_id)
        return reply

    def tick(self, session_id: str) -> Reply | None:
        """Time-driven prompts: hold over, peak check-ins, ready prompt, unacknowledged alerts."""
        session = self.store.get_session(session_id)
        if session.phase in TERMINAL_PHASES:
            return None
        work = self._work(session)
        work.escalate_unacknowledged_alerts()
        work.timed_prompts()
        if not work.says and not work.events:
            return None
        return self._finish(work, incoming=None)

    def clear_hold(self, session_id: str, clinician: str, note: str = "") -> Reply:
        """A clinician clears a safety hold (the session resumes where it is safe)."""
        session = self.store.get_session(session_id)
        work = self._work(session)
        work.clear_hold(clinician, note)
        return self._finish(work, incoming=None)

    def abort(self, session_id: str, reason: str) -> Reply:
        session = self.store.get_session(session_id)
        work = self._work(session)
        work.fire_abort(reason)
        return self._finish(work, incoming=None)

    def status(self, session_id: str) -> Reply:
        """The current state without changing anything (for interfaces)."""
        session = self.store.get_session(session_id)
        work = self._work(session)
        return work.reply_without_storing([])

    # -- internals ------------------------------------------------------------

    def _work(self, session: SessionRecord) -> TurnWork:
        return TurnWork(
            session=session.model_copy(deep=True),
            guardrails=self.guardrails,
            offerer=self.offerer,
            store=self.store,
            now=self.clock.now(),
            ack_timeout_s=self.companion_ack_timeout_s,
            screen_spec=self.screen_spec,
            content_versions=self.content_versions,
            output_screen=self.output_screen,
        )

    def _process(self, session: SessionRecord, incoming: TurnRecord) -> Reply:
        work = self._work(session)
        work.handle_incoming(incoming)
        return self._finish(work, incoming=incoming)

    def _variables(self, work: TurnWork) -> dict[str, Any]:
        protocol = work.session.protocol
        facts = work.session.facts
        variables: dict[str, Any] = {
            "patient_name": protocol.patient_name,
            "companion_name": protocol.companion_name,
            "clinic_name": protocol.clinic_name,
            "prescriber": protocol.prescriber,
            "dose_text": protocol.dose_text,
            "formulation": protocol.formulation,
            "hold_minutes": f"{protocol.hold_minutes:g}",
            "fasting_hours": f"{protocol.fasting_hours:g}",
            "no_substances_hours": f"{protocol.no_substances_hours:g}",
            "bp_max_systolic": protocol.bp_max_systolic,
            "bp_max_diastolic": protocol.bp_max_diastolic,
            "on_call_hours": protocol.on_call_hours,
            "on_call_contact": protocol.on_call_contact,
            "checkin_interval_minutes": f"{protocol.checkin_interval_minutes:g}",
            "intention": facts.intention or "",
            "hold_remaining": format_remaining(facts.hold_remaining_s(protocol, work.now)),
        }
        variables.update(self.locale_variables.get(protocol.locale, {}))
        return variables

    def _render(self, work: TurnWork) -> list[Draft]:
        context = ResponderContext(
            phase=work.session.phase, patient_text=work.incoming_text, variables=self._variables(work)
        )
        return list(self.responder.respond(work.says, context))

    def _finish(self, work: TurnWork, incoming: TurnRecord | None) -> Reply:
        drafts = self._render(work)
        work.add_drafts(drafts)
        work.store_outputs()
        self.store.commit_turn(
            work.session,
            work.incoming if incoming is not None else None,
            work.new_turns,
            work.events,
            work.notices,
        )
        self._deliver_notices(work.session.id)
        return work.reply()

    def _deliver_notices(self, session_id: str) -> None:
        if self.notice_sender is not None:
            self.notice_sender.deliver_pending(self.store, session_id)
