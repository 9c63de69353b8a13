"""Prometheus metrics, in a registry owned by the platform (no global registry)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = RequestStats()
        r.register(self.requests)
        self.replicas = Gauge(
            "modelplane_replicas", "Replicas by state", ["deployment", "state"], registry=r
        )
        self.restarts = Counter(
            "modelplane_replica_restarts",
            "Replicas replaced after they died",
            ["deployment", "reason"],
            registry=r,
        )
        self.queued = Gauge(
            "modelplane_queued_requests",
            "Requests waiting for a ready replica",
            ["deployment"],
            registry=r,
        )
        self.cold_starts = Counter(
            "modelplane_cold_starts",
            "Replicas started for a deployment at zero",
            ["deployment"],
            registry=r,
        )
        self.cold_start_seconds = Histogram(
            "modelplane_cold_start_seconds",
            "From start to ready",
            ["deployment"],
            registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.observe_request = self.requests.observe

    def forget(self, deployment: str) -> None:
        self.requests.forget(deployment)


class _Series:
    __slots__ = ("buckets", "codes", "total")

    def __init__(self) -> None:
        self.codes: dict[int, int] = {}
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0


class RequestStats(Collector):
    """Request counts and latency on the hot path, as plain integers.

    prometheus-client's labelled Counter and Histogram take a lock and look up the child on
    every call; on the prediction path that cost is visible in req/s. Here an observation is a
    dict lookup, a bisect and three additions, and the families are built only when scraped.
    """

    def __init__(self) -> None:
        self._series: dict[str, _Series] = {}

    def observe(self, deployment: str, status: int, seconds: float) -> None:
        series = self._series.get(deployment)
        if series is None:
            series = self._series[deployment] = _Series()
        codes = series.codes
        codes[status] = codes.get(status, 0) + 1
        series.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        series.total += seconds

    def forget(self, deployment: str) -> None:
        self._series.pop(deployment, None)

    def count(self, deployment: str) -> int:
        series = self._series.get(deployment)
        return sum(series.codes.values()) if series else 0

    def snapshot(self, deployment: str) -> tuple[int, int, int, tuple[int, ...]]:
        """Cumulative (requests, 5xx answers, 4xx answers, requests per latency bucket)."""
        series = self._series.get(deployment)
        if series is None:
            return 0, 0, 0, (0,) * (len(LATENCY_BUCKETS) + 1)
        codes = dict(series.codes)
        errors = sum(n for code, n in codes.items() if code >= 500)
        rejected = sum(n for code, n in codes.items() if 400 <= code < 500)
        return sum(codes.values()), errors, rejected, tuple(series.buckets)

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily(
            "modelplane_requests", "Prediction requests answered", labels=["deployment", "code"]
        )
        latency = HistogramMetricFamily(
            "modelplane_request_seconds",
            "Prediction latency seen by the gateway",
            labels=["deployment"],
        )
        for name, series in list(self._series.items()):
            for code, n in sorted(series.codes.items()):
                requests.add_metric([name, str(code)], n)
            cumulative, acc = [], 0
            for bound, n in zip((*LATENCY_BUCKETS, float("inf")), series.buckets, strict=True):
                acc += n
                cumulative.append((str(bound) if bound != float("inf") else "+Inf", acc))
            latency.add_metric([name], cumulative, series.total)
        yield requests
        yield latency
