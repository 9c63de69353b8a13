"""Replicas as Ray actors: Ray places them on the cluster's nodes, our frames carry the traffic.

Each replica is one :class:`~modelplane.backends.ray.host.ReplicaHost` actor created with the
deployment's ``num_cpus``, ``num_gpus``, ``memory`` and custom resources; the actor runs the same
worker program as the local backend, which dials the gateway's TCP address with its per-replica
secret. Every Ray call goes through :class:`RayApi` (one wrapper, so nothing else imports ray).

Placement failures reach ``status``: a request no alive node could ever hold fails at once with
the reason; one that fits but finds no free room now fails after ``place_timeout`` seconds (the
reconciler retries with its backoff). A lost node fails its actors; the reconciler starts their
replacements, which Ray places on the nodes that are left. Warm templates are not kept on Ray:
each replica is a fresh interpreter on its node (``prepare`` does nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from modelplane.backends.base import LogLine, ReplicaHandle, ReplicaLaunch
from modelplane.backends.ray.host import ReplicaHost
from modelplane.backends.ray.placement import NodeInfo, actor_options, never_fits
from modelplane.errors import InsufficientResources
from modelplane.spec import DeploymentSpec

log = logging.getLogger("modelplane.ray")

# Ray hands these out itself, per actor, from what it granted on the chosen node.
_DEVICE_ENV = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")


class RayApi:
    """The only place that calls Ray. ``connect`` once at start-up, then everything else."""

    def __init__(self, address: str, namespace: str = "modelplane") -> None:
        self.address = address
        self.namespace = namespace
        self._cls: Any = None

    def connect(self) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(
                address=self.address,
                namespace=self.namespace,
                log_to_driver=False,
                configure_logging=False,
            )
        remote: Any = ray.remote
        self._cls = remote(max_restarts=0, max_concurrency=8)(ReplicaHost)

    def nodes(self) -> list[NodeInfo]:
        import ray

        return [
            NodeInfo(n["NodeID"], n.get("NodeManagerAddress", ""), dict(n.get("Resources", {})))
            for n in ray.nodes()
            if n.get("Alive")
        ]

    def totals(self) -> dict[str, float]:
        import ray

        return dict(ray.cluster_resources())

    def create(self, name: str, options: dict[str, Any]) -> Any:
        return self._cls.options(name=name, **options).remote()

    def kill(self, actor: Any) -> None:
        import ray

        with contextlib.suppress(Exception):
            ray.kill(actor, no_restart=True)

    @staticmethod
    def lost(exc: BaseException) -> bool:
        """Is ``exc`` Ray saying the actor or its node is gone?"""
        from ray.exceptions import RayActorError, RayError

        return isinstance(exc, RayActorError | RayError)

    def connected(self) -> bool:
        import ray

        return bool(ray.is_initialized())


class RayBackend:
    def __init__(self, api: RayApi, log_line: LogLine, *, place_timeout: float = 30.0) -> None:
        self.api = api
        self._log = log_line
        self.place_timeout = place_timeout
        self._actors: dict[str, Any] = {}
        self._rss: dict[str, int | None] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the RuntimeBackend interface -----------------------------------------------------------
    async def start(self, launch: ReplicaLaunch) -> ReplicaHandle:
        spec = launch.spec
        nodes = await asyncio.to_thread(self.api.nodes)
        why = never_fits(spec, nodes)
        if why is not None:
            raise InsufficientResources(why, deployment=spec.name)
        actor = self.api.create(f"replica-{launch.replica_id}", actor_options(spec))
        try:
            where = await asyncio.wait_for(actor.where.remote(), self.place_timeout)
        except TimeoutError:
            self.api.kill(actor)
            raise InsufficientResources(
                f"no node of the Ray cluster had room for a replica of {spec.name!r} within "
                f"{self.place_timeout:g} s (cpu {spec.resources.cpu:g}, gpu {spec.resources.gpu},"
                f" memory {spec.resources.memory / 2**20:.0f} MiB)",
                deployment=spec.name,
            ) from None
        env = {k: v for k, v in {**spec.env, **launch.env}.items() if k not in _DEVICE_ENV}
        env["PYTHONUNBUFFERED"] = "1"
        args = ["-m", "modelplane.worker", "--connect", launch.gateway_address]
        args += ["--replica-id", launch.replica_id, "--deployment", spec.name]
        args += ["--model-path", spec.model.path]
        if spec.model.entrypoint:
            args += ["--entrypoint", spec.model.entrypoint]
        args += ["--loader", spec.model.loader]
        exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        handle = ReplicaHandle(launch.replica_id, spec.name, None, exited)
        handle.node = str(where["address"])
        handle.node_id = str(where["node_id"])
        self._actors[launch.replica_id] = actor
        gpus = f", GPUs {where['gpus']}" if where["gpus"] else ""
        self._log(
            spec.name,
            "platform",
            f"replica {launch.replica_id} placed by Ray on node {where['address']} "
            f"({str(where['node_id'])[:12]}){gpus}",
        )
        task = asyncio.create_task(self._watch(launch, actor, args, env, exited))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return handle

    async def _watch(
        self,
        launch: ReplicaLaunch,
        actor: Any,
        args: list[str],
        env: dict[str, str],
        exited: asyncio.Future[int],
    ) -> None:
        name = launch.spec.name
        try:
            result = await actor.run.remote(args, env, launch.spec.model.path)
            code = int(result["code"])
            for line in result["tail"]:
                self._log(name, launch.replica_id, line)
        except Exception as exc:
            if not self.api.lost(exc):
                raise
            code = -9  # the actor or its node is gone: the replica went with it
            self._log(name, "platform", f"replica {launch.replica_id} lost with its Ray actor")
        finally:
            self._actors.pop(launch.replica_id, None)
            self._rss.pop(launch.replica_id, None)
            self.api.kill(actor)
            if not exited.done():
                exited.set_result(code if "code" in locals() else -9)

    async def stop(self, handle: ReplicaHandle, grace: float = 5.0) -> None:
        actor = self._actors.get(handle.replica_id)
        if actor is None or handle.exited.done():
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(actor.stop.remote(grace), grace + 5)
        try:
            await asyncio.wait_for(asyncio.shield(handle.exited), grace + 5)
        except TimeoutError:
            self.api.kill(actor)
            await handle.exited

    def memory_bytes(self, handle: ReplicaHandle) -> int | None:
        """Last known RSS (refreshed in the background: the reconciler asks synchronously)."""
        actor = self._actors.get(handle.replica_id)
        if actor is None:
            return None
        task = asyncio.ensure_future(self._refresh_rss(handle.replica_id, actor))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return self._rss.get(handle.replica_id)

    async def _refresh_rss(self, replica_id: str, actor: Any) -> None:
        with contextlib.suppress(Exception):
            self._rss[replica_id] = await asyncio.wait_for(actor.rss.remote(), 2)

    async def prepare(self, spec: DeploymentSpec) -> None:
        return None

    def environment(self, spec: DeploymentSpec) -> dict[str, Any] | None:
        return None

    async def release(self, deployment: str, keep: DeploymentSpec | None = None) -> None:
        return None

    async def close(self) -> None:
        for actor in list(self._actors.values()):
            self.api.kill(actor)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)

    def health(self) -> dict[str, Any]:
        return {"backend": "ray", "ray": "connected" if self.api.connected() else "lost"}
