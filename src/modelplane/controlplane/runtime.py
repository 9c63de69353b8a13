"""What the reconciler remembers about each deployment it runs and each replica it started.

Plain records, no behaviour beyond reading them: the reconciler keeps them up to date, the
lifecycle decider (:mod:`modelplane.controlplane.lifecycle`) and the status derivation
(:mod:`modelplane.controlplane.status`) read them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelplane.backends.base import ReplicaHandle
from modelplane.controlplane.lifecycle import CrashHistory, Exit, ReplicaView
from modelplane.spec import DeploymentSpec, Mode


@dataclass
class Replica:
    id: str
    started_at: float
    started_wall: datetime
    handle: ReplicaHandle | None = None
    state: str = "starting"  # starting | ready | exiting | stopping
    ready_at: float | None = None
    load_seconds: float | None = None
    error: str | None = None
    stop_requested: bool = False
    oom: bool = False
    cold: bool = False
    """Started while the deployment had no ready replica: its start-up is a cold start."""
    during_request: bool = False
    """Its connection dropped with requests in flight: a request, not a loop, killed it."""

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def view(self, load: int = 0, memory: int | None = None) -> ReplicaView:
        """This replica as the lifecycle decider sees it."""
        return ReplicaView(self.id, self.state, load=load, memory=memory)

    def exit(self, code: int | None) -> Exit:
        """Its end as the lifecycle decider weighs it."""
        return Exit(
            self.id,
            code,
            started_at=self.started_at,
            ready_at=self.ready_at,
            stop_requested=self.stop_requested,
            oom=self.oom,
            error=self.error,
            during_request=self.during_request,
        )


@dataclass
class DeploymentRuntime:
    name: str
    owner: str
    spec: DeploymentSpec
    generation: int
    replicas: dict[str, Replica] = field(default_factory=dict)
    crashes: CrashHistory = field(default_factory=CrashHistory)
    last_error: str | None = None
    last_error_at: datetime | None = None
    metadata: dict[str, Any] | None = None
    cold_starts: list[dict[str, Any]] = field(default_factory=list)
    """The most recent cold starts: when, and seconds from start to ready."""
    pending: str | None = None
    """Why a wanted replica is not started (node full, over quota); None when none waits."""
    wake_at: float | None = None
    """When the reconciler last asked to be woken for this deployment's backoff to end."""

    def failed(self, reason: str, at: datetime) -> None:
        """Keep ``reason`` as the deployment's last error (shown by ``status``)."""
        self.last_error, self.last_error_at = reason, at

    def live(self) -> list[Replica]:
        return [r for r in self.replicas.values() if r.state != "stopping"]

    def count(self, state: str) -> int:
        return sum(1 for r in self.replicas.values() if r.state == state)

    @property
    def restarts(self) -> int:
        return self.crashes.restarts

    @property
    def failures(self) -> int:
        return self.crashes.failures

    @property
    def next_start_at(self) -> float:
        return self.crashes.next_start_at


DesiredFn = Callable[[DeploymentRuntime, float], int]
"""How many replicas a deployment wants at ``now`` (the autoscaler's answer, on the platform)."""


def fixed_desired(dep: DeploymentRuntime, now: float) -> int:
    """Dedicated deployments keep their replica count; serverless ones are sized elsewhere."""
    if dep.spec.mode is Mode.dedicated:
        return dep.spec.scale.replicas
    return max(dep.spec.scale.min, 1)
