"""Prometheus metrics, in a registry owned by the platform (no global registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "modelplane_requests", "Prediction requests answered", ["deployment", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "modelplane_request_seconds", "Prediction latency seen by the gateway",
            ["deployment"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.replicas = Gauge(
            "modelplane_replicas", "Replicas by state", ["deployment", "state"], registry=r
        )
        self.restarts = Counter(
            "modelplane_replica_restarts", "Replicas replaced after they died", ["deployment",
            "reason"], registry=r,
        )
        self.queued = Gauge(
            "modelplane_queued_requests", "Requests waiting for a ready replica", ["deployment"],
            registry=r,
        )
        self.cold_starts = Counter(
            "modelplane_cold_starts", "Replicas started for a deployment at zero", ["deployment"],
            registry=r,
        )
        self.cold_start_seconds = Histogram(
            "modelplane_cold_start_seconds", "From start to ready", ["deployment"], registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self._req_children: dict[tuple[str, int], Counter] = {}
        self._lat_children: dict[str, Histogram] = {}

    def observe_request(self, deployment: str, status: int, seconds: float) -> None:
        key = (deployment, status)
        counter = self._req_children.get(key)
        if counter is None:
            counter = self._req_children[key] = self.requests.labels(deployment, str(status))
        counter.inc()
        hist = self._lat_children.get(deployment)
        if hist is None:
            hist = self._lat_children[deployment] = self.latency.labels(deployment)
        hist.observe(seconds)

    def forget(self, deployment: str) -> None:
        for key in [k for k in self._req_children if k[0] == deployment]:
            del self._req_children[key]
        self._lat_children.pop(deployment, None)
