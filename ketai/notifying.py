"""Delivers stored clinician notices (the outbox) through the configured notifiers.

A failing notifier never breaks a turn: the error is recorded on the notice
and delivery is retried on the next turn or resume.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from ketai.clock import Clock, SystemClock
from ketai.store.base import TranscriptStore

log = logging.getLogger(__name__)

Deliver = Callable[[dict[str, Any]], None]


class NoticeSender:
    def __init__(self, deliverers: Sequence[Deliver], clock: Clock | None = None) -> None:
        self._deliverers = list(deliverers)
        self._clock = clock or SystemClock()

    def deliver_pending(self, store: TranscriptStore, session_id: str | None = None) -> int:
        delivered = 0
        for notice in store.undelivered_notices(session_id):
            if notice.id is None:
                continue
            errors: list[str] = []
            for deliver in self._deliverers:
                try:
                    deliver(notice.payload)
                except Exception as exc:  # noqa: BLE001 - any notifier failure is recorded, never raised
                    errors.append(f"{type(exc).__name__}: {exc}")
                    log.warning("clinician notice %s not delivered: %s", notice.id, exc)
            if errors:
                store.mark_notice(notice.id, delivered_at=None, error="; ".join(errors)[:500])
            else:
                store.mark_notice(notice.id, delivered_at=self._clock.now(), error=None)
                delivered += 1
        return delivered
