"""A runtime backend that starts nothing: tests decide when replicas exit."""

from __future__ import annotations

import asyncio
from typing import Any

from modelplane.backends.base import ReplicaHandle, ReplicaLaunch
from modelplane.spec import DeploymentSpec


class FakeBackend:
    def __init__(self, memory: int = 10 * 2**20) -> None:
        self.launches: list[ReplicaLaunch] = []
        self.handles: dict[str, ReplicaHandle] = {}
        self.stopped: list[str] = []
        self.memory: dict[str, int] = {}
        self.default_memory = memory
        self._pid = 1000
        self.prepared: list[object] = []
        self.released: list[str] = []
        self.environments: dict[str, dict[str, Any]] = {}
        """What environment() reports, by deployment name (tests set it)."""

    async def start(self, launch: ReplicaLaunch) -> ReplicaHandle:
        self._pid += 1
        exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        handle = ReplicaHandle(launch.replica_id, launch.spec.name, self._pid, exited)
        self.launches.append(launch)
        self.handles[launch.replica_id] = handle
        return handle

    def exit(self, replica_id: str, code: int = 1) -> None:
        """Make a replica die, as a crash would."""
        handle = self.handles[replica_id]
        if not handle.exited.done():
            handle.exited.set_result(code)

    async def stop(self, handle: ReplicaHandle, grace: float = 5.0) -> None:
        self.stopped.append(handle.replica_id)
        if not handle.exited.done():
            handle.exited.set_result(-15)

    def memory_bytes(self, handle: ReplicaHandle) -> int | None:
        if handle.exited.done():
            return None
        return self.memory.get(handle.replica_id, self.default_memory)

    async def prepare(self, spec: object) -> None:
        self.prepared.append(spec)

    def environment(self, spec: DeploymentSpec) -> dict[str, Any] | None:
        return self.environments.get(spec.name)

    async def release(self, deployment: str, keep: object | None = None) -> None:
        self.released.append(deployment)

    async def close(self) -> None:
        for handle in self.handles.values():
            if not handle.exited.done():
                handle.exited.set_result(-9)
