"""Injectable clocks: real time for ``ketai chat``, manual time for tests and demos (nobody sleeps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (tests, demos, benchmarks)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, *, minutes: float = 0.0, seconds: float = 0.0) -> datetime:
        self._now += timedelta(minutes=minutes, seconds=seconds)
        return self._now
