"""A short, bounded history of each deployment's traffic and replicas, for the dashboard's charts.

The gateway keeps cumulative counters (requests by status, a latency histogram); Prometheus turns
those into rates and quantiles over time, but a user of the dashboard has no Prometheus. So the
platform samples the counters every ``interval`` seconds and keeps the differences, at most
``keep`` points per deployment, in memory: about half an hour at the defaults, a few hundred kB
whatever the traffic. A restart starts the history afresh (the counters start afresh too).

``History.record`` is pure bookkeeping over readings it is handed (no clock, no I/O of its own);
the sampling loop that reads the gateway lives in the platform.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelplane.metrics import LATENCY_BUCKETS


@dataclass(frozen=True)
class Reading:
    """One deployment's cumulative counters and current replica counts at one instant."""

    requests: int
    errors: int
    """Answers with a 5xx status: the platform or the model failed."""
    rejected: int
    """Answers with a 4xx status: the request was refused (bad input, unknown type…)."""
    latency_buckets: tuple[int, ...]
    """Requests per latency bucket (not cumulative), as :data:`LATENCY_BUCKETS` plus +Inf."""
    ready: int
    desired: int
    starting: int = 0
    queued: int = 0
    in_flight: int = 0


@dataclass(frozen=True)
class Point:
    at: float
    """Wall-clock seconds (Unix time) at the end of the interval."""
    seconds: float
    """Length of the interval this point covers."""
    requests: int
    errors: int
    rejected: int
    buckets: tuple[int, ...]
    ready: int
    desired: int
    starting: int
    queued: int
    in_flight: int

    def view(self) -> dict[str, Any]:
        per_min = 60.0 / self.seconds if self.seconds > 0 else 0.0
        return {
            "at": round(self.at, 3),
            "requests": self.requests,
            "requests_per_min": round(self.requests * per_min, 2),
            "errors": self.errors,
            "rejected": self.rejected,
            "p50_ms": _ms(quantile(0.5, self.buckets)),
            "p99_ms": _ms(quantile(0.99, self.buckets)),
            "ready": self.ready,
            "desired": self.desired,
            "starting": self.starting,
            "queued": self.queued,
            "in_flight": self.in_flight,
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def quantile(
    q: float, buckets: Sequence[int], bounds: Sequence[float] = LATENCY_BUCKETS
) -> float | None:
    """The ``q``-quantile of a latency histogram, interpolated linearly inside its bucket the way
    Prometheus' ``histogram_quantile`` does. ``buckets`` are counts per bucket (not cumulative),
    one more than ``bounds`` (the last is +Inf, whose quantile is the largest finite bound).
    None when the histogram is empty."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be within 0 and 1, not {q}")
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(buckets):
        if n and seen + n >= rank:
            if i >= len(bounds):
                return bounds[-1]
            lower = bounds[i - 1] if i > 0 else 0.0
            return lower + (bounds[i] - lower) * ((rank - seen) / n)
        seen += n
    return bounds[-1]


class History:
    """Per-deployment points, each the difference between two successive readings."""

    def __init__(self, keep: int = 900) -> None:
        if keep < 2:
            raise ValueError("keep at least 2 points")
        self.keep = keep
        self._points: dict[str, deque[Point]] = {}
        self._views: dict[str, deque[dict[str, Any]]] = {}
        """Each point as the API shows it, computed once when recorded (not on every poll)."""
        self._last: dict[str, tuple[float, Reading]] = {}

    def record(self, at: float, readings: dict[str, Reading]) -> None:
        """Add one point per deployment in ``readings``; forget deployments that are gone."""
        for name in [n for n in self._last if n not in readings]:
            self.forget(name)
        for name, now in readings.items():
            previous = self._last.get(name)
            self._last[name] = (at, now)
            if previous is None:
                continue  # the first reading is only a baseline
            then_at, then = previous
            if now.requests < then.requests:  # counters were reset (deployment re-created)
                then = Reading(0, 0, 0, (0,) * len(now.latency_buckets), 0, 0)
            point = Point(
                at=at,
                seconds=max(at - then_at, 1e-9),
                requests=now.requests - then.requests,
                errors=now.errors - then.errors,
                rejected=now.rejected - then.rejected,
                buckets=tuple(
                    a - b for a, b in zip(now.latency_buckets, then.latency_buckets, strict=True)
                ),
                ready=now.ready,
                desired=now.desired,
                starting=now.starting,
                queued=now.queued,
                in_flight=now.in_flight,
            )
            series = self._points.get(name)
            if series is None:
                series = self._points[name] = deque(maxlen=self.keep)
                self._views[name] = deque(maxlen=self.keep)
            series.append(point)
            self._views[name].append(point.view())

    def forget(self, name: str) -> None:
        self._points.pop(name, None)
        self._views.pop(name, None)
        self._last.pop(name, None)

    def points(self, name: str, since: float | None = None) -> list[dict[str, Any]]:
        """The points of ``name`` newer than ``since`` (Unix seconds), oldest first."""
        views = self._views.get(name, ())
        if since is None:
            return list(views)
        newer = []
        for v in reversed(views):  # newest first: a poll asks only for the last few
            if v["at"] <= since:
                break
            newer.append(v)
        return newer[::-1]

    def summary(self, name: str, window: float = 60.0) -> dict[str, Any]:
        """Traffic over the last ``window`` seconds: what the deployments list shows."""
        series = self._points.get(name)
        if not series:
            return {"window": window, "requests_per_min": 0.0, "errors": 0, "p99_ms": None}
        end = series[-1].at
        recent = []
        for p in reversed(series):  # newest first: stop at the window's start, not the deque's
            if p.at <= end - window:
                break
            recent.append(p)
        seconds = sum(p.seconds for p in recent)
        requests = sum(p.requests for p in recent)
        merged = [sum(col) for col in zip(*(p.buckets for p in recent), strict=True)]
        return {
            "window": window,
            "requests_per_min": round(requests * 60.0 / seconds, 2) if seconds else 0.0,
            "errors": sum(p.errors for p in recent),
            "p99_ms": _ms(quantile(0.99, merged)),
        }
