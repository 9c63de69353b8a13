"""Where the reconciler writes down what happened, so it only has to decide and act.

Three records of one fact: the deployment's platform log (``modelplane logs``), its events in
the store (``status``' event list, written off the event loop), and the Prometheus counters and
gauges. None of it feeds back into a decision.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from modelplane.controlplane.lifecycle import Crash
from modelplane.controlplane.runtime import DeploymentRuntime, Replica
from modelplane.logs import LogBook
from modelplane.metrics import Metrics
from modelplane.store import Store

COLD_STARTS_KEPT = 20


class Journal:
    def __init__(
        self,
        store: Store,
        logs: LogBook,
        metrics: Metrics,
        background: Callable[[Coroutine[Any, Any, Any]], None],
    ) -> None:
        self.store = store
        self.logs = logs
        self.metrics = metrics
        self._background = background

    def log(self, deployment: str, message: str) -> None:
        """A line in the deployment's platform log."""
        self.logs.write(deployment, "platform", message)

    def event(self, deployment: str, kind: str, message: str, replica: str = "") -> None:
        """An event row in the store, written in a thread so the loop never waits on it."""
        self._background(
            asyncio.to_thread(self.store.add_event, deployment, kind, message, replica)
        )

    def note(self, deployment: str, kind: str, message: str) -> None:
        """Both: a log line and an event."""
        self.log(deployment, message)
        self.event(deployment, kind, message)

    def crash(self, deployment: str, replica: str, crash: Crash) -> None:
        self.metrics.restarts.labels(deployment, crash.kind).inc()
        self.log(deployment, f"{crash.reason}; replacing it in {crash.delay:.1f} s")
        self.event(deployment, crash.kind, crash.reason, replica)

    def ready(self, dep: DeploymentRuntime, replica: Replica, startup: float) -> None:
        """A replica came up ``startup`` seconds after it was started; from zero, a cold start
        (counted, timed, and kept in the deployment's recent cold starts)."""
        self.log(dep.name, f"replica {replica.id} ready in {startup:.3f} s")
        if not replica.cold:
            self.event(dep.name, "ready", f"ready in {startup:.3f} s", replica.id)
            return
        self.metrics.cold_starts.labels(dep.name).inc()
        self.metrics.cold_start_seconds.labels(dep.name).observe(startup)
        dep.cold_starts = [
            *dep.cold_starts[-(COLD_STARTS_KEPT - 1) :],
            {
                "at": replica.started_wall.isoformat(),
                "seconds": round(startup, 4),
                "load_seconds": replica.load_seconds,
            },
        ]
        self.event(dep.name, "cold_start", f"ready from zero in {startup:.3f} s", replica.id)

    def gauges(self, dep: DeploymentRuntime, queued: int) -> None:
        self.metrics.replicas.labels(dep.name, "ready").set(dep.count("ready"))
        self.metrics.replicas.labels(dep.name, "starting").set(dep.count("starting"))
        self.metrics.queued.labels(dep.name).set(queued)

    def forget(self, deployment: str) -> None:
        """The deployment is gone: its replica gauges go too."""
        for state in ("ready", "starting"):
            with contextlib.suppress(KeyError):
                self.metrics.replicas.remove(deployment, state)
