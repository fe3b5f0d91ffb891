"""Clinician notices: a stored event plus delivery through notifiers.

``ClinicianNotice`` is what the care team receives. A ``Notifier`` delivers it and returns a
``DeliveryResult``; it never raises for an ordinary delivery failure (unreachable webhook, HTTP error,
timeout, unwritable file), so a failing notifier can never break a turn. The engine stores the notice
first (its own transcript store) and then calls ``deliver_all``; failed deliveries are visible in the
returned results for logging and retry. ``BackendUnavailable`` is only raised by ``raise_for_failure``,
for callers that prefer an exception.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import httpx
from pydantic import BaseModel, Field

from ketai.errors import BackendUnavailable
from ketai.models import EscalationLevel, Phase, SignalName
from ketai.settings import Settings

log = logging.getLogger(__name__)

EXCERPT_CHARS = 280
"""Notices carry a short excerpt, not the whole transcript (least PHI needed to act)."""


class ClinicianNotice(BaseModel):
    session_id: str
    turn_seq: int = Field(ge=0)
    level: EscalationLevel
    signals: list[SignalName]
    excerpt: str = Field(max_length=EXCERPT_CHARS)
    phase: Phase | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    reason: str = ""
    """E.g. ``companion alert not acknowledged``; empty for a plain escalation."""

    @classmethod
    def build(
        cls,
        *,
        session_id: str,
        turn_seq: int,
        level: EscalationLevel,
        signals: Sequence[SignalName],
        text: str,
        phase: Phase | None,
        reason: str = "",
    ) -> ClinicianNotice:
        excerpt = " ".join(text.split())
        if len(excerpt) > EXCERPT_CHARS:
            excerpt = excerpt[: EXCERPT_CHARS - 1] + "\u2026"
        return cls(
            session_id=session_id,
            turn_seq=turn_seq,
            level=level,
            signals=list(signals),
            excerpt=excerpt,
            phase=phase,
            reason=reason,
        )


class DeliveryResult(BaseModel):
    notifier: str
    delivered: bool
    detail: str = ""


class Notifier(Protocol):
    name: str

    def send(self, notice: ClinicianNotice) -> DeliveryResult: ...


class WebhookNotifier:
    """POSTs the notice as JSON. Any 2xx counts as delivered."""

    name = "webhook"

    def __init__(self, url: str, timeout: float = 5.0, *, client: httpx.Client | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self._client = client

    def send(self, notice: ClinicianNotice) -> DeliveryResult:
        payload = notice.model_dump(mode="json")
        try:
            if self._client is not None:
                response = self._client.post(self.url, json=payload, timeout=self.timeout)
            else:
                response = httpx.post(self.url, json=payload, timeout=self.timeout)
        except httpx.HTTPError as exc:
            log.warning("clinician webhook failed: %s", exc)
            return DeliveryResult(
                notifier=self.name, delivered=False, detail=f"{type(exc).__name__}: {exc}"[:300]
            )
        if 200 <= response.status_code < 300:
            return DeliveryResult(notifier=self.name, delivered=True, detail=str(response.status_code))
        log.warning("clinician webhook answered %s", response.status_code)
        return DeliveryResult(notifier=self.name, delivered=False, detail=f"HTTP {response.status_code}")


class FileNotifier:
    """Appends one JSON line per notice (thread-safe within the process)."""

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send(self, notice: ClinicianNotice) -> DeliveryResult:
        line = json.dumps(notice.model_dump(mode="json"), ensure_ascii=False)
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
        except OSError as exc:
            log.warning("clinician notice file %s not writable: %s", self.path, exc)
            return DeliveryResult(notifier=self.name, delivered=False, detail=str(exc)[:300])
        return DeliveryResult(notifier=self.name, delivered=True, detail=str(self.path))


def build_notifiers(settings: Settings) -> list[Notifier]:
    """Always the file notifier (``settings.notices_path``); the webhook too if ``settings.webhook_url``."""
    notifiers: list[Notifier] = [FileNotifier(settings.notices_path)]
    if settings.webhook_url:
        notifiers.append(WebhookNotifier(settings.webhook_url, timeout=min(settings.llm_timeout_s, 10.0)))
    return notifiers


def deliver_all(notifiers: Sequence[Notifier], notice: ClinicianNotice) -> list[DeliveryResult]:
    """Send through every notifier; never raises (an unexpected notifier bug is reported as a failure)."""
    results: list[DeliveryResult] = []
    for notifier in notifiers:
        try:
            results.append(notifier.send(notice))
        except Exception as exc:  # a notifier must never break a turn
            log.exception("notifier %s crashed", getattr(notifier, "name", notifier))
            results.append(
                DeliveryResult(
                    notifier=str(getattr(notifier, "name", "unknown")),
                    delivered=False,
                    detail=f"{type(exc).__name__}: {exc}"[:300],
                )
            )
    return results


def raise_for_failure(results: Sequence[DeliveryResult]) -> None:
    """Raise ``BackendUnavailable`` when no notifier delivered (for callers that want an exception)."""
    if results and not any(r.delivered for r in results):
        details = "; ".join(f"{r.notifier}: {r.detail}" for r in results)
        raise BackendUnavailable(f"clinician notice not delivered ({details})")
