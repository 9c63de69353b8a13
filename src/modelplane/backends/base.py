"""The seam between the reconciler and whatever runs replicas."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from modelplane.spec import DeploymentSpec

LogLine = Callable[[str, str, str], None]
"""``(deployment, replica_id, line)``: where a replica's own stdout and stderr go."""


@dataclass(frozen=True)
class ReplicaLaunch:
    """Everything a backend needs to start one replica."""

    replica_id: str
    spec: DeploymentSpec
    gateway_address: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class ReplicaHandle:
    replica_id: str
    deployment: str
    pid: int | None
    exited: asyncio.Future[int]
    """Resolves to the exit code (negative: killed by that signal)."""
    node: str | None = None
    """Where it runs, when the backend spans several nodes (the node's address)."""
    node_id: str | None = None


class RuntimeBackend(Protocol):
    async def start(self, launch: ReplicaLaunch) -> ReplicaHandle:
        """Start a replica; it dials the gateway once its model is loaded."""
        ...

    async def stop(self, handle: ReplicaHandle, grace: float = 5.0) -> None:
        """Terminate a replica, killing it if it has not exited after ``grace`` seconds."""
        ...

    def memory_bytes(self, handle: ReplicaHandle) -> int | None:
        """Resident memory of the replica, or None if unknown or gone."""
        ...

    async def prepare(self, spec: DeploymentSpec) -> object:
        """Get ready to start replicas of ``spec`` fast (a warm template); optional work."""
        ...

    def environment(self, spec: DeploymentSpec) -> dict[str, Any] | None:
        """The model's own Python environment: None when it runs on the platform's interpreter,
        else ``{"key", "state": building | ready | failed, "last_lines", "error"?}``."""
        ...

    async def release(self, deployment: str, keep: DeploymentSpec | None = None) -> None:
        """Free what the backend keeps for a deployment (warm templates), except for ``keep``."""
        ...

    async def close(self) -> None:
        """Stop everything this backend started."""
        ...
