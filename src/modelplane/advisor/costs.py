"""What a model costs the platform: load time, cold-start overhead, per-request service time.

These are measured (see :mod:`modelplane.advisor.measure`), never guessed; the simulator only
replays them. A service time is a distribution: the measured samples, resampled, or for tests
of known queueing results an exponential with a given mean.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Costs", "ServiceTime"]


@dataclass(frozen=True)
class ServiceTime:
    """How long one request keeps a replica busy, in seconds.

    ``samples`` (measured) are drawn from uniformly at random; without samples, ``mean`` is
    used as is, or as the mean of an exponential when ``exponential`` is set.
    """

    samples: tuple[float, ...] = ()
    mean_seconds: float = 0.0
    exponential: bool = False

    def __post_init__(self) -> None:
        if any(not s >= 0 for s in self.samples):
            raise ValueError("service time samples must be >= 0 seconds")
        if not self.samples and not self.mean_seconds > 0:
            raise ValueError("a service time needs samples or a mean > 0 seconds")

    @classmethod
    def of(cls, samples: list[float] | tuple[float, ...]) -> ServiceTime:
        return cls(samples=tuple(float(s) for s in samples))

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples) if self.samples else self.mean_seconds

    def draw(self, rng: random.Random) -> float:
        if self.samples:
            return self.samples[rng.randrange(len(self.samples))]
        if self.exponential:
            return rng.expovariate(1.0 / self.mean_seconds)
        return self.mean_seconds

    def quantile(self, q: float) -> float:
        if not self.samples:
            return self.mean_seconds
        ordered = sorted(self.samples)
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


@dataclass(frozen=True)
class Costs:
    """One model's measured costs on this platform.

    ``start_overhead``: from "start a replica" to its hello, minus the model's own load time
    (fork or spawn, imports, the socket). A replica is ready ``start_overhead + load_seconds``
    after it is asked for. ``stop_seconds``: from the last answer of a stopped replica to its
    exit. ``source`` says where the figures come from (``history``, ``probe`` or ``given``).
    """

    load_seconds: float
    start_overhead: float
    service: ServiceTime
    stop_seconds: float = 0.02
    source: str = "given"
    notes: tuple[str, ...] = field(default=())
    startup_samples: tuple[float, ...] = ()
    """Measured start-to-ready times; when given, each simulated start draws one of them (loads
    vary, on a busy machine a lot) instead of using ``startup``."""
    hop: ServiceTime | None = None
    """The platform hop: per request, the round trip outside the replica (the client's
    connection and HTTP exchange, the gateway's parsing and routing, the frame to the replica
    and back). It adds to a request's latency without holding a replica. The probe measures it
    as each warm request's round trip minus the service time the gateway recorded for it; None:
    not measured (a deployment's history holds only the gateway's side)."""
    concurrent_startups: tuple[float, ...] = ()
    """Measured start-to-ready times of replicas started ``concurrency`` at a time (the probe's
    bursts from zero): how much starts that overlap slow each other on this node."""
    concurrency: int = 0

    def __post_init__(self) -> None:
        for name in ("load_seconds", "start_overhead", "stop_seconds"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0 seconds, got {getattr(self, name)!r}")

    @property
    def startup(self) -> float:
        """Seconds from asking for a replica to its first possible answer."""
        return self.start_overhead + self.load_seconds

    def draw_startup(self, rng: random.Random) -> float:
        if self.startup_samples:
            return self.startup_samples[rng.randrange(len(self.startup_samples))]
        return self.startup

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "load_seconds": round(self.load_seconds, 6),
            "start_overhead_seconds": round(self.start_overhead, 6),
            "cold_start_seconds": round(self.startup, 6),
            "service_seconds_mean": round(self.service.mean, 6),
            "service_seconds_p50": round(self.service.quantile(0.5), 6),
            "service_seconds_p99": round(self.service.quantile(0.99), 6),
            "service_samples": len(self.service.samples),
            "service_samples_seconds": [round(x, 6) for x in self.service.samples],
            "cold_start_samples_seconds": [round(x, 6) for x in self.startup_samples],
            "hop_seconds_p50": None if self.hop is None else round(self.hop.quantile(0.5), 6),
            "hop_seconds_p99": None if self.hop is None else round(self.hop.quantile(0.99), 6),
            "hop_samples_seconds": (
                [] if self.hop is None else [round(x, 6) for x in self.hop.samples]
            ),
            "concurrency": self.concurrency,
            "concurrent_start_samples_seconds": [round(x, 6) for x in self.concurrent_startups],
            "notes": list(self.notes),
        }
