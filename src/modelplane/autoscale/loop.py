"""The autoscale loop: collect from the gateway, decide with the pure policy, act through the
reconciler. Three places, joined here and nowhere else.

- collector: each tick reads, per serverless deployment, the requests in flight on its replicas
  plus those queued for one (no per-request cost: the gateway keeps these counts anyway);
- decider: :func:`modelplane.autoscale.policy.decide` over a windowed average;
- actuator: the reconciler's ``converge``, which starts or stops replicas.

A request that finds a deployment at zero pokes the loop, so a cold start begins at once rather
than at the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from modelplane.autoscale.policy import ScaleConfig
from modelplane.autoscale.tracker import Tracker
from modelplane.clock import Clock, utc
from modelplane.spec import DeploymentSpec, Mode

log = logging.getLogger("modelplane.autoscale")


class Demand(Protocol):
    """What the collector reads from the gateway for one deployment."""

    def demand(self, name: str) -> tuple[int, int, int] | None:
        """``(in_flight, queued, requests_so_far)``, or None if the gateway does not know it."""
        ...


class Actuator(Protocol):
    def live_replicas(self, name: str) -> int: ...
    async def converge(self, name: str) -> None: ...
    def record_event(self, name: str, kind: str, message: str) -> None: ...


@dataclass
class _Entry(Tracker):
    history: deque[tuple[str, int]] = field(default_factory=lambda: deque(maxlen=200))


class Autoscaler:
    def __init__(
        self,
        demand: Demand,
        actuator: Actuator,
        clock: Clock,
        *,
        interval: float = 0.2,
        tuning: dict[str, float] | None = None,
        queued_jobs: Callable[[str], int] | None = None,
    ) -> None:
        self.demand = demand
        self.actuator = actuator
        self.clock = clock
        self.interval = interval
        self.tuning = tuning or {}
        self.queued_jobs = queued_jobs
        self._entries: dict[str, _Entry] = {}
        self._specs: dict[str, DeploymentSpec] = {}
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what the reconciler asks -------------------------------------------------------------
    def desired(self, spec: DeploymentSpec, now: float) -> int:
        if spec.mode is Mode.dedicated:
            return spec.scale.replicas
        entry = self._entry(spec, now)
        return entry.desired

    def _entry(self, spec: DeploymentSpec, now: float) -> _Entry:
        entry = self._entries.get(spec.name)
        if entry is None or self._specs.get(spec.name) != spec:
            config = ScaleConfig.from_spec(spec.scale, **self.tuning)
            old = entry
            entry = _Entry(config, now)
            if old is not None:  # a spec update keeps the current size, then re-decides
                entry.desired = min(max(old.desired, config.min_replicas), config.max_replicas)
                entry.last_request_at = old.last_request_at
                entry.history = old.history
            self._entries[spec.name] = entry
            self._specs[spec.name] = spec
        return entry

    def forget(self, name: str) -> None:
        self._entries.pop(name, None)
        self._specs.pop(name, None)

    # -- the loop -----------------------------------------------------------------------------
    def poke(self, name: str) -> None:
        """A request is waiting for a replica of ``name``: decide now."""
        spec = self._specs.get(name)
        if spec is not None:
            self.tick(spec, self.clock.now())

    async def run(self) -> None:
        while not self._closing:
            now = self.clock.now()
            for spec in list(self._specs.values()):
                try:
                    self.tick(spec, now)
                except Exception:
                    log.exception("autoscale tick failed for %s", spec.name)
            await asyncio.sleep(self.interval)

    def close(self) -> None:
        self._closing = True

    def tick(self, spec: DeploymentSpec, now: float) -> int:
        entry = self._entry(spec, now)
        observed = self.demand.demand(spec.name)
        if observed is None:
            return entry.desired
        in_flight, queued, count = observed
        before = entry.desired
        decision = entry.observe(
            now,
            replicas=self.actuator.live_replicas(spec.name),
            in_flight=in_flight,
            queued=queued,
            requests_so_far=count,
            queued_jobs=self.queued_jobs(spec.name) if self.queued_jobs else 0,
        )
        if decision.desired_replicas != before:
            stamp = utc(self.clock).isoformat()
            entry.history.append((stamp, entry.desired))
            self.actuator.record_event(
                spec.name, "scale", f"{before} -> {entry.desired} replicas: {decision.reason}"
            )
        if decision.desired_replicas != self.actuator.live_replicas(spec.name):
            self._converge(spec.name)
        return entry.desired

    def _converge(self, name: str) -> None:
        # Safe to run concurrently: the actuator books a replica before it awaits its start.
        with contextlib.suppress(RuntimeError):
            task = asyncio.get_running_loop().create_task(self.actuator.converge(name))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- reporting ----------------------------------------------------------------------------
    def status(self, name: str) -> dict[str, Any]:
        entry = self._entries.get(name)
        if entry is None:
            return {}
        return {
            "autoscaler": {
                "desired": entry.desired,
                "reason": entry.reason,
                "panicking": entry.state.panicking,
                "history": [{"at": at, "replicas": n} for at, n in entry.history],
            }
        }
