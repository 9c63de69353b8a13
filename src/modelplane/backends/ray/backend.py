"""Replicas on a Ray cluster: Ray places them on its nodes, our frames carry the traffic.

Each replica claims the deployment's ``num_cpus``, ``num_gpus``, ``memory`` and custom resources
from Ray (a placement group, or a :class:`~modelplane.backends.ray.host.ReplicaHost` actor, see
below) and runs the same worker program as the local backend, which dials the gateway (its Unix
socket from the platform's machine, else TCP) with its per-replica secret. Every Ray call goes
through :class:`RayApi` (one wrapper, so nothing else imports ray).

Placement failures reach ``status``: a request no alive node could ever hold fails at once with
the reason; one that fits but finds no free room now fails after ``place_timeout`` seconds (the
reconciler retries with its backoff). A lost node fails its actors; the reconciler starts their
replacements, which Ray places on the nodes that are left.

Warm templates (see :mod:`.templates`): ``prepare`` starts one per deployment generation on each
node that could hold a replica. A CPU replica then claims its resources with a one-bundle
placement group (no process to start: Ray's scheduler answers in milliseconds) and is forked by
that node's template. A GPU replica, or one whose node has no ready template, is a
:class:`ReplicaHost` actor (so that Ray hands it its devices), forked by the template on the node
Ray chose, or else a fresh interpreter started by its actor. Either way the claim or the actor is
hinted (softly) towards the node that could hold it running fewest of the deployment's replicas
(``spread_target``; ties: a warm node), so a node whose template is late still gets its share.

A health probe (``ray.nodes()`` with a deadline) runs every ``probe_interval`` seconds: when the
cluster stops answering (head or GCS gone) the backend says ``degraded`` in ``/api/v1/health``
and refuses new placements with 503, while replicas already connected keep serving: their data
links are connections to our gateway (Unix socket or TCP), which Ray does not carry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from modelplane.backends.base import LogLine, ReplicaHandle, ReplicaLaunch
from modelplane.backends.ray.host import ReplicaHost, TemplateHost
from modelplane.backends.ray.placement import (
    NodeInfo,
    actor_options,
    claim_bundle,
    never_fits,
    spread_target,
)
from modelplane.backends.ray.templates import NodeTemplates, template_key
from modelplane.errors import InsufficientResources, Unavailable
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
        # Ray ends a driver that cannot reach its GCS for this long (60 s by default); the
        # platform must outlive its cluster's head and keep serving the replicas it reaches.
        os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", str(10 * 365 * 86400))
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
        self._template_cls = remote(max_restarts=0, max_concurrency=64)(TemplateHost)

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

    def create(self, name: str, options: dict[str, Any], target: str | None) -> Any:
        """A replica's host actor, asked of ``target`` first (soft: Ray picks another node with
        room when that one has none)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        strategy: Any = NodeAffinitySchedulingStrategy(target, soft=True) if target else "SPREAD"
        return self._cls.options(name=name, scheduling_strategy=strategy, **options).remote()

    def create_template(self, name: str, node_id: str) -> Any:
        """A template host pinned to ``node_id``, holding no resources (it only forks)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
        return self._template_cls.options(num_cpus=0, scheduling_strategy=strategy).remote()

    def claim(self, bundle: dict[str, float], target: str | None) -> Any:
        """Ask Ray for one replica's resources, as a one-bundle placement group."""
        from ray.util.placement_group import placement_group

        return placement_group([bundle], strategy="STRICT_PACK", _soft_target_node_id=target)

    def claimed_node(self, claim: Any) -> str | None:
        """The node Ray put the claim on, or None while it is pending."""
        from ray.util.placement_group import placement_group_table

        table = placement_group_table(claim)
        if table.get("state") != "CREATED":
            return None
        node = table.get("bundles_to_node_id", {}).get(0)
        return str(node) if node else None

    def unclaim(self, claim: Any) -> None:
        from ray.util.placement_group import remove_placement_group

        with contextlib.suppress(Exception):
            remove_placement_group(claim)

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


@dataclass
class _Placed:
    """How one replica runs: who holds its resources, who runs its process."""

    deployment: str
    node_id: str
    runner: Any
    """The actor whose child the replica is: its node's template, or its own host."""
    forked: bool
    owner: Any = None
    """The replica's own host actor (GPU or cold path), killed when it ends."""
    claim: Any = None
    """Its placement group (CPU warm path), removed when it ends."""
    pid: int | None = None
    """The replica process's pid on its node."""
    gpus: str = ""


class RayBackend:
    def __init__(
        self,
        api: RayApi,
        log_line: LogLine,
        *,
        place_timeout: float = 30.0,
        probe_interval: float = 2.0,
        probe_timeout: float = 5.0,
    ) -> None:
        self.api = api
        self._log = log_line
        self.place_timeout = place_timeout
        self.probe_interval = probe_interval
        self.probe_timeout = probe_timeout
        self.templates = NodeTemplates(api, log_line)
        self._placed: dict[str, _Placed] = {}
        self._placing: list[tuple[str, str]] = []
        self._rss: dict[str, int | None] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._probe: asyncio.Future[list[NodeInfo]] | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._degraded: str | None = None
        self._nodes: list[NodeInfo] = []

    def _keep(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- the cluster's health -------------------------------------------------------------------
    async def nodes(self) -> list[NodeInfo]:
        """The alive nodes, asked with a deadline; Unavailable (503) while Ray does not answer.

        One question is in flight at a time: a call hung on an unreachable GCS is waited for,
        never stacked up in more threads."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(asyncio.to_thread(self.api.nodes))
        try:
            nodes = await asyncio.wait_for(asyncio.shield(self._probe), self.probe_timeout)
        except Exception as exc:
            why = "no answer" if isinstance(exc, TimeoutError) else type(exc).__name__
            if self._degraded is None:
                self._degraded = (
                    f"the Ray cluster at {self.api.address} does not answer ({why} within "
                    f"{self.probe_timeout:g} s) since {time.strftime('%H:%M:%S', time.gmtime())} "
                    "UTC; replicas already connected keep serving over their own links to the "
                    "gateway; none can be started or stopped through Ray until it is back"
                )
                log.warning("%s", self._degraded)
                self._log("*", "platform", self._degraded)
            raise Unavailable(self._degraded, retry_after=self.probe_interval) from None
        if self._degraded is not None:
            self._log("*", "platform", "the Ray cluster answers again")
            self._degraded = None
        self._nodes = nodes
        return nodes

    def start_monitor(self) -> None:
        """Probe the cluster every ``probe_interval`` s and keep warm templates on its nodes."""
        if self._monitor is None or self._monitor.done():
            self._monitor = asyncio.create_task(self._watch_cluster())

    async def _watch_cluster(self) -> None:
        while True:
            with contextlib.suppress(Unavailable):
                self.templates.ensure(await self.nodes())
            await asyncio.sleep(self.probe_interval)

    def health(self) -> dict[str, Any]:
        if self._degraded is not None:
            state = {"kind": "ray", "state": "degraded", "detail": self._degraded}
        else:
            alive = len(self._nodes)
            state = {"kind": "ray", "state": "ok", "detail": f"{alive} alive Ray nodes"}
        return {"backend": state}

    # -- the RuntimeBackend interface -----------------------------------------------------------
    async def prepare(self, spec: DeploymentSpec) -> None:
        """Start warm templates of ``spec`` on every node that could hold a replica."""
        self.start_monitor()
        self.templates.want(spec)
        starting = self.templates.ensure(await self.nodes())
        if starting:
            await asyncio.wait([asyncio.create_task(e.settled.wait()) for e in starting])

    async def start(self, launch: ReplicaLaunch) -> ReplicaHandle:
        self.start_monitor()
        spec = launch.spec
        nodes = await self.nodes()
        why = never_fits(spec, nodes)
        if why is not None:
            raise InsufficientResources(why, deployment=spec.name)
        key = template_key(spec)
        warm = self.templates.ready_nodes(key)
        placed_now = [(p.deployment, p.node_id) for p in self._placed.values()]
        running = Counter(node for name, node in placed_now + self._placing if name == spec.name)
        target = spread_target(spec, nodes, warm, running)
        mark = (spec.name, target or "")
        self._placing.append(mark)  # replicas started together spread too
        try:
            placed: _Placed | None = None
            if not spec.resources.gpu and target in warm:
                placed = await self._claim_and_fork(launch, key, target)
            if placed is None:
                placed = await self._host(launch, key, target)
        finally:
            self._placing.remove(mark)
        exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        handle = ReplicaHandle(launch.replica_id, spec.name, placed.pid, exited)
        handle.node_id = placed.node_id
        handle.node = next((n.address for n in nodes if n.node_id == placed.node_id), None)
        self._placed[launch.replica_id] = placed
        how = "forked by the node's warm template" if placed.forked else "a fresh interpreter"
        self._log(
            spec.name,
            "platform",
            f"replica {launch.replica_id} placed by Ray on node {handle.node} "
            f"({placed.node_id[:12]}){placed.gpus}, {how}",
        )
        self._keep(self._watch(launch, placed, exited))
        return handle

    def _too_long(self, spec: DeploymentSpec) -> InsufficientResources:
        return InsufficientResources(
            f"no node of the Ray cluster had room for a replica of {spec.name!r} within "
            f"{self.place_timeout:g} s (cpu {spec.resources.cpu:g}, gpu {spec.resources.gpu},"
            f" memory {spec.resources.memory / 2**20:.0f} MiB)",
            deployment=spec.name,
        )

    async def _claim_and_fork(
        self, launch: ReplicaLaunch, key: str, target: str
    ) -> _Placed | None:
        """The warm CPU path: claim resources (no process), fork on the claimed node. None if
        Ray put the claim on a node without a ready template (the caller takes the actor path)."""
        spec = launch.spec
        claim = await asyncio.to_thread(self.api.claim, claim_bundle(spec), target)
        deadline = time.monotonic() + self.place_timeout
        node_id = None
        while node_id is None:
            node_id = await asyncio.to_thread(self.api.claimed_node, claim)
            if node_id is None:
                if time.monotonic() > deadline:
                    self.api.unclaim(claim)
                    raise self._too_long(spec)
                await asyncio.sleep(0.005)
        template = self.templates.ready_on(key, node_id)
        if template is None:
            self.api.unclaim(claim)
            return None
        try:
            pid = await template.actor.spawn.remote(launch, None)
        except Exception as exc:
            self.api.unclaim(claim)
            if not self.api.lost(exc):
                raise
            return None  # the template went just now: the actor path
        return _Placed(spec.name, node_id, template.actor, True, claim=claim, pid=pid)

    async def _host(self, launch: ReplicaLaunch, key: str, target: str | None) -> _Placed:
        """A host actor holds the replica's resources (asked of ``target`` first); the node's
        template forks the replica, or without one the actor runs it as a fresh interpreter."""
        spec = launch.spec
        actor = self.api.create(f"replica-{launch.replica_id}", actor_options(spec), target)
        try:
            where = await asyncio.wait_for(actor.where.remote(), self.place_timeout)
        except TimeoutError:
            self.api.kill(actor)
            raise self._too_long(spec) from None
        node_id, gpus = str(where["node_id"]), str(where["gpus"])
        shown = f", GPUs {gpus}" if gpus else ""
        env = {k: v for k, v in {**spec.env, **launch.env}.items() if k not in _DEVICE_ENV}
        template = self.templates.ready_on(key, node_id)
        if template is not None:
            # The template's node has no GPU of its own: the replica gets its host's.
            devices = {k: gpus for k in _DEVICE_ENV} if spec.resources.gpu else {}
            fork = replace(launch, env={**launch.env, **devices})
            with contextlib.suppress(Exception):
                pid = await template.actor.spawn.remote(fork, int(where["pid"]))
                return _Placed(spec.name, node_id, template.actor, True, actor, None, pid, shown)
        env["PYTHONUNBUFFERED"] = "1"
        args = ["-m", "modelplane.worker", "--connect", launch.gateway_address]
        args += ["--replica-id", launch.replica_id, "--deployment", spec.name]
        args += ["--model-path", spec.model.path]
        if spec.model.entrypoint:
            args += ["--entrypoint", spec.model.entrypoint]
        args += ["--loader", spec.model.loader]
        try:
            pid = await actor.spawn.remote(args, env, spec.model.path)
        except BaseException:
            self.api.kill(actor)
            raise
        return _Placed(spec.name, node_id, actor, False, actor, None, pid, shown)

    async def _watch(
        self, launch: ReplicaLaunch, placed: _Placed, exited: asyncio.Future[int]
    ) -> None:
        name, rid = launch.spec.name, launch.replica_id
        code = -9
        try:
            if placed.forked:
                result = await placed.runner.wait.remote(rid)
            else:
                result = await placed.runner.wait.remote()
            code = int(result["code"])
            for line in result["tail"]:
                self._log(name, rid, line)
        except Exception as exc:
            if not self.api.lost(exc):
                raise
            # the actor or its node is gone: the replica went with it
            self._log(name, "platform", f"replica {rid} lost with its Ray actor")
        finally:
            self._placed.pop(rid, None)
            self._rss.pop(rid, None)
            if placed.owner is not None:
                self.api.kill(placed.owner)
            if placed.claim is not None:
                await asyncio.to_thread(self.api.unclaim, placed.claim)
            if not exited.done():
                exited.set_result(code)

    async def stop(self, handle: ReplicaHandle, grace: float = 5.0) -> None:
        placed = self._placed.get(handle.replica_id)
        if placed is None or handle.exited.done():
            return
        with contextlib.suppress(Exception):
            if placed.forked:
                call = placed.runner.stop.remote(handle.replica_id, grace)
            else:
                call = placed.runner.stop.remote(grace)
            await asyncio.wait_for(call, grace + 5)
        try:
            await asyncio.wait_for(asyncio.shield(handle.exited), grace + 5)
        except TimeoutError:
            # Its own host, if it has one; a forked CPU replica's only other owner is the
            # template (killing it would end its node-mates): the template's SIGKILL stands.
            if placed.owner is not None:
                self.api.kill(placed.owner)
            await handle.exited

    def memory_bytes(self, handle: ReplicaHandle) -> int | None:
        """Last known RSS (refreshed in the background: the reconciler asks synchronously)."""
        placed = self._placed.get(handle.replica_id)
        if placed is None:
            return None
        self._keep(self._refresh_rss(handle.replica_id, placed))
        return self._rss.get(handle.replica_id)

    async def _refresh_rss(self, replica_id: str, placed: _Placed) -> None:
        with contextlib.suppress(Exception):
            call = (
                placed.runner.rss.remote(replica_id)
                if placed.forked
                else placed.runner.rss.remote()
            )
            rss = await asyncio.wait_for(call, 2)
            if replica_id in self._placed:
                self._rss[replica_id] = rss

    def environment(self, spec: DeploymentSpec) -> dict[str, Any] | None:
        return None

    async def release(self, deployment: str, keep: DeploymentSpec | None = None) -> None:
        await self.templates.release(deployment, keep)

    async def close(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
        for placed in list(self._placed.values()):
            self.api.kill(placed.owner if placed.owner is not None else placed.runner)
        await self.templates.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)
