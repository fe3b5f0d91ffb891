"""Delivers stored clinician notices (the outbox) through the configured notifiers.

Notices are written with the turn's commit and delivered afterwards, so a
crash can delay a notice but never lose it. A notice counts as delivered
when at least one notifier took it (the file notifier is always configured);
failures are recorded on the notice and logged. A failing notifier never
breaks a turn.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ketai.clock import Clock, SystemClock
from ketai.notify import ClinicianNotice, Notifier, deliver_all
from ketai.store.base import TranscriptStore

log = logging.getLogger(__name__)


class NoticeSender:
    def __init__(self, notifiers: Sequence[Notifier], clock: Clock | None = None) -> None:
        self._notifiers = list(notifiers)
        self._clock = clock or SystemClock()

    def deliver_pending(self, store: TranscriptStore, session_id: str | None = None) -> int:
        delivered = 0
        for record in store.undelivered_notices(session_id):
            if record.id is None:
                continue
            notice = ClinicianNotice.model_validate(record.payload)
            results = deliver_all(self._notifiers, notice)
            failures = "; ".join(f"{r.notifier}: {r.detail}" for r in results if not r.delivered)
            if any(r.delivered for r in results):
                store.mark_notice(record.id, delivered_at=self._clock.now(), error=failures or None)
                delivered += 1
            else:
                log.warning("clinician notice %s not delivered: %s", record.id, failures)
                store.mark_notice(
                    record.id, delivered_at=None, error=failures[:500] or "no notifier configured"
                )
        return delivered
