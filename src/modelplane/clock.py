"""Clocks. Logic takes a :class:`Clock` (or a ``now`` value) instead of calling ``time`` itself,
so a test lets ten idle minutes pass in a microsecond (:class:`modelplane.testing.FakeClock`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale: for durations, deadlines and rates."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch: for what is stored or shown (token expiry, events)."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


def utc(clock: Clock) -> datetime:
    """The clock's wall time as an aware UTC datetime."""
    return datetime.fromtimestamp(clock.wall(), UTC)
