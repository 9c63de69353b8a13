"""Windowed averages of a sampled concurrency signal, in bounded memory.

The autoscaler does not want the concurrency of one instant (too noisy) nor of all time (too
slow): it wants the average over the last *stable window* (tens of seconds) and over the last
*panic window* (a few seconds). :class:`ConcurrencyWindow` keeps just enough history for both.

Why a time-weighted average and not the mean of the samples: a sampler that runs every 0.1 s on
one tick and every 2 s on the next (a busy event loop) would otherwise weigh some instants twenty
times more than others. Concurrency is a step function — the value a sample observed holds until
the next sample — so each value is weighed by how long it held. That also makes the result
independent of the sampling rate, which lets tests use a coarse rate and production a fine one.

Memory is bounded by bucketing: the integral of the signal (value * seconds) is summed per bucket
of ``granularity`` seconds and buckets older than ``horizon`` are dropped. The only approximation
is at the old edge of a window that starts inside a bucket; there the bucket's mass is taken
pro rata, as if the signal had been uniform inside it.

Nothing here reads a clock: ``now`` is always passed in, so a test can replay ten minutes of
traffic in a millisecond.
"""

from __future__ import annotations

import math

__all__ = ["ConcurrencyWindow"]


class ConcurrencyWindow:
    """Time-weighted averages of a concurrency signal over windows that end at ``now``.

    Feed it with :meth:`record` (a sample means "from ``now`` on the concurrency is ``value``"),
    query it with :meth:`average`. A sampler that stops reporting leaves the last value in force,
    so callers should keep sampling while idle (recording ``0``), as the gateway's sampler does.
    """

    def __init__(self, horizon: float = 60.0, granularity: float = 1.0) -> None:
        """Keep enough history to answer :meth:`average` for any window up to ``horizon`` s.

        ``granularity`` is the bucket width in seconds: smaller is more precise at the window's
        old edge and costs ``horizon / granularity`` floats of memory.
        """
        if not granularity > 0:
            raise ValueError(f"granularity must be > 0 seconds, got {granularity!r}")
        if not horizon >= granularity:
            raise ValueError(f"horizon must be >= granularity ({granularity} s), got {horizon!r}")
        self._horizon = float(horizon)
        self._granularity = float(granularity)
        # bucket index -> integral of the signal (value * seconds) over the closed part of the
        # bucket. Indices only grow (time only moves forward here), so insertion order is index
        # order and pruning pops from the front.
        self._buckets: dict[int, float] = {}
        self._first_at: float | None = None
        self._last_at = 0.0
        self._last_value = 0.0
        self._last_active_at: float | None = None

    @property
    def horizon(self) -> float:
        """The longest window :meth:`average` accepts, in seconds."""
        return self._horizon

    @property
    def granularity(self) -> float:
        """The bucket width in seconds."""
        return self._granularity

    @property
    def last_value(self) -> float:
        """The most recent sample (``0.0`` before the first one)."""
        return self._last_value

    @property
    def last_active_at(self) -> float | None:
        """When a non-zero sample was last recorded, or ``None`` if never.

        A caller without a better signal can pass this as ``last_request_at`` to the policy.
        """
        return self._last_active_at

    def record(self, now: float, value: float) -> None:
        """Record that from ``now`` on the concurrency is ``value``.

        A sample older than the previous one does not move time backwards (two producers may
        race by a few microseconds); it only replaces the current value.
        """
        if not value >= 0:
            raise ValueError(f"concurrency must be >= 0, got {value!r}")
        if self._first_at is None:
            self._first_at = now
            self._last_at = now
        else:
            at = max(now, self._last_at)
            self._accumulate(self._last_at, at, self._last_value)
            self._last_at = at
        self._last_value = float(value)
        if value > 0:
            self._last_active_at = self._last_at
        self._prune(self._last_at)

    def average(self, now: float, window: float) -> float:
        """The time-weighted average concurrency over ``[now - window, now]``.

        Only time since the first sample counts: a window longer than the history averages over
        the history, so a fresh deployment is not diluted by imagined zeros. A ``now`` earlier
        than the last sample is taken as the last sample's time.
        """
        if not 0 < window <= self._horizon:
            raise ValueError(f"window must be in (0, {self._horizon}] seconds, got {window!r}")
        if self._first_at is None:
            return 0.0
        now = max(now, self._last_at)
        start = max(now - window, self._first_at)
        span = now - start
        if span <= 0:
            return self._last_value
        total = self._closed_integral(start) + self._last_value * (now - max(self._last_at, start))
        return max(total / span, 0.0)

    def _closed_integral(self, start: float) -> float:
        """The signal's integral over ``[start, last sample]``, from the buckets."""
        if start >= self._last_at or self._first_at is None:
            return 0.0
        g = self._granularity
        first_index = math.floor(start / g)
        total = 0.0
        # Newest first, stopping at the window's old edge: a short (panic) window reads only
        # its few buckets, not the whole horizon.
        for index, mass in reversed(self._buckets.items()):
            if index > first_index:
                total += mass
                continue
            if index == first_index:
                # The part of this bucket the signal covered is contiguous (the signal is defined
                # from the first sample to the last); take the share of it after `start`.
                covered_from = max(index * g, self._first_at)
                covered_to = min((index + 1) * g, self._last_at)
                covered = covered_to - covered_from
                if covered > 0:
                    total += mass * max(covered_to - max(start, covered_from), 0.0) / covered
            break
        return total

    def _accumulate(self, start: float, end: float, value: float) -> None:
        """Add ``value`` held over ``[start, end]`` to the buckets it spans."""
        if value == 0 or end <= start:
            return
        g = self._granularity
        # Anything older than the horizon is pruned right after; don't spend a loop on it.
        start = max(start, end - self._horizon - g)
        index = math.floor(start / g)
        while index * g < end:
            overlap = min(end, (index + 1) * g) - max(start, index * g)
            if overlap > 0:
                self._buckets[index] = self._buckets.get(index, 0.0) + value * overlap
            index += 1

    def _prune(self, now: float) -> None:
        """Drop buckets that no window of at most ``horizon`` seconds can reach."""
        oldest = math.floor((now - self._horizon) / self._granularity)
        while self._buckets:
            index = next(iter(self._buckets))
            if index >= oldest:
                break
            del self._buckets[index]

    def __len__(self) -> int:
        """How many buckets are held (bounded by ``horizon / granularity + 2``)."""
        return len(self._buckets)
