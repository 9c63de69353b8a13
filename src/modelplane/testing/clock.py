"""A clock that moves only when told to (the real ones live in :mod:`modelplane.clock`)."""

from __future__ import annotations


class FakeClock:
    """Monotonic and wall time that advance together, only on :meth:`advance`: ten idle
    minutes pass in a microsecond."""

    def __init__(self, start: float = 1000.0, wall: float = 1_800_000_000.0) -> None:
        self._now = start
        self._wall = wall

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> float:
        self._now += seconds
        self._wall += seconds
        return self._now
