"""The reconciler: drives the replicas that run toward the deployments that are stored.

It wakes on every change (a deploy, a replica ready, a replica gone) and at a short interval, reads
the desired state from the store, and starts or stops replicas through the runtime backend. A
replica that dies unasked is replaced, after a backoff that grows while it keeps dying; one that
goes over its memory limit is stopped and the reason is kept for ``status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from modelplane.backends.base import ReplicaHandle, ReplicaLaunch, RuntimeBackend
from modelplane.clock import Clock, utc
from modelplane.controlplane.backoff import failures_after_exit, restart_delay
from modelplane.errors import Unavailable
from modelplane.gateway.balance import per_replica_limit, scale_down_order
from modelplane.gateway.dataplane import DataPlane
from modelplane.logs import LogBook
from modelplane.metrics import Metrics
from modelplane.resources.placement import Refusal
from modelplane.resources.reservations import ReservationBook, per_replica
from modelplane.spec import DeploymentSpec, Mode
from modelplane.store import Store
from modelplane.worker.main import SECRET_ENV

log = logging.getLogger("modelplane.reconciler")

STABLE_AFTER = 10.0
"""A replica that ran this long before dying resets the backoff: it was not a crash loop."""


@dataclass
class Replica:
    id: str
    started_at: float
    started_wall: datetime
    handle: ReplicaHandle | None = None
    state: str = "starting"  # starting | ready | stopping
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


@dataclass
class DeploymentRuntime:
    name: str
    owner: str
    spec: DeploymentSpec
    generation: int
    replicas: dict[str, Replica] = field(default_factory=dict)
    restarts: int = 0
    failures: int = 0
    next_start_at: float = 0.0
    last_error: str | None = None
    last_error_at: datetime | None = None
    metadata: dict[str, Any] | None = None
    cold_starts: list[dict[str, Any]] = field(default_factory=list)
    """The most recent cold starts: when, and seconds from start to ready."""
    pending: str | None = None
    """Why a wanted replica is not started (node full, over quota); None when none waits."""

    def live(self) -> list[Replica]:
        return [r for r in self.replicas.values() if r.state != "stopping"]


DesiredFn = Callable[[DeploymentRuntime, float], int]


def fixed_desired(dep: DeploymentRuntime, now: float) -> int:
    """Dedicated deployments keep their replica count; serverless ones are sized elsewhere."""
    if dep.spec.mode is Mode.dedicated:
        return dep.spec.scale.replicas
    return max(dep.spec.scale.min, 1)


class Reconciler:
    def __init__(
        self,
        store: Store,
        backend: RuntimeBackend,
        dataplane: DataPlane,
        logs: LogBook,
        metrics: Metrics,
        clock: Clock,
        *,
        cache_dir: Path,
        interval: float = 0.5,
        stop_grace: float = 5.0,
        desired: DesiredFn = fixed_desired,
    ) -> None:
        self.store = store
        self.backend = backend
        self.dataplane = dataplane
        self.logs = logs
        self.metrics = metrics
        self.clock = clock
        self.cache_dir = cache_dir
        self.interval = interval
        self.stop_grace = stop_grace
        self.desired = desired
        self.deployments: dict[str, DeploymentRuntime] = {}
        self._by_replica: dict[str, tuple[DeploymentRuntime, Replica]] = {}
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._sync_lock = asyncio.Lock()
        self.extra_status: Callable[[str], dict[str, Any]] | None = None
        self.on_removed: list[Callable[[str], None]] = []
        self.reservations: ReservationBook | None = None
        """Set: every replica reserves its CPU, memory and GPUs before it starts."""
        self.passive: Callable[[], Awaitable[None]] | None = None
        """Set while another platform process leads: :meth:`sync` runs this instead (the
        follower's view of the store), and nothing here starts replicas."""
        self.remote_status: Callable[[str], dict[str, Any] | None] | None = None
        """Set: a deployment's status as the leader reports it, preferred while passive."""
        dataplane.events = self

    # -- the loop -------------------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self._closing:
            try:
                await self.reconcile_once()
            except Exception:
                log.exception("reconcile pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()

    async def reconcile_once(self) -> None:
        await self.sync()
        for dep in list(self.deployments.values()):
            self._check_memory(dep)
            await self.converge(dep.name)

    async def sync(self) -> None:
        """Bring the in-memory view of deployments in line with the store.

        Serialised: a pass that read the store before a delete must not resurrect what a later
        pass removed. Nothing here awaits after the read, so the view changes atomically.
        """
        if self.passive is not None:
            await self.passive()
            return
        async with self._sync_lock:
            rows = await asyncio.to_thread(self.store.list_deployments)
            self._apply(rows)

    def _apply(self, rows: list[Any]) -> None:
        seen: set[str] = set()
        for row in rows:
            seen.add(row.name)
            dep = self.deployments.get(row.name)
            if dep is None:
                spec = DeploymentSpec.model_validate(row.spec)
                dep = DeploymentRuntime(row.name, row.owner, spec, row.generation)
                self.deployments[row.name] = dep
                if self.reservations is not None:
                    self.reservations.commit(row.name, row.owner, spec)
                self.dataplane.add_deployment(row.name, row.owner)
                self._background(self._prepare(spec))
            elif dep.generation != row.generation:
                dep.spec = DeploymentSpec.model_validate(row.spec)
                dep.generation = row.generation
                if self.reservations is not None:
                    self.reservations.commit(row.name, row.owner, dep.spec)
                dep.failures = 0
                dep.next_start_at = 0.0
                for replica in dep.live():  # replaced by replicas of the new spec below
                    self._stop(dep, replica, "spec updated")
                self._background(self.backend.release(dep.name, keep=dep.spec))
                self._background(self._prepare(dep.spec))
        for name in [n for n in self.deployments if n not in seen]:
            self._teardown(name)

    async def converge(self, name: str) -> None:
        """Start or stop replicas of one deployment toward its desired count, now.

        The autoscaler calls this directly when a request finds a deployment at zero, so a cold
        start does not wait for the next pass or a store read.
        """
        dep = self.deployments.get(name)
        if dep is None:
            return
        now = self.clock.now()
        want = self.desired(dep, now)
        live = dep.live()
        env = self.backend.environment(dep.spec)
        if env is not None and env["state"] != "ready" and len(live) < want:
            self._environment_not_ready(dep, env)
        elif len(live) < want and now >= dep.next_start_at:
            cold = not any(r.state == "ready" for r in live)
            for _ in range(want - len(live)):
                if not await self._start(dep, cold=cold):
                    break
        elif len(live) > want:
            load = self.dataplane.load(dep.name)
            victims = scale_down_order(live, lambda r: load.get(r.id, 0))
            for replica in victims[: len(live) - want]:
                self._stop(dep, replica, "scaled down")
        if len(dep.live()) >= want:
            dep.pending = None
        self._publish(dep)

    async def _prepare(self, spec: DeploymentSpec) -> None:
        """Warm up what replicas of ``spec`` need (its environment, a template), then look again."""
        try:
            await self.backend.prepare(spec)
        finally:
            self.wake()

    def _environment_not_ready(self, dep: DeploymentRuntime, env: dict[str, Any]) -> None:
        """No replica starts while the model's environment builds; a failed build is reported
        once, as the deployment's error, and requests waiting for a replica are answered."""
        if env["state"] != "failed":
            return
        reason = f"the model's environment could not be built: {env.get('error')}"
        if dep.last_error != reason:
            dep.last_error = reason
            dep.last_error_at = utc(self.clock)
            self._platform_log(dep.name, reason)
            self._event(dep.name, "environment_failed", reason)
        self.dataplane.fail_waiting(
            dep.name, _unavailable(f"deployment {dep.name!r}: {reason}", 30.0)
        )

    # -- starting and stopping ------------------------------------------------------------------
    async def _start(self, dep: DeploymentRuntime, cold: bool = False) -> bool:
        """Start one replica; False if it cannot start now (no room), with the reason kept."""
        rid = f"{dep.name}-{secrets.token_hex(3)}"
        env = {"MODELPLANE_CACHE_DIR": str(self.cache_dir / dep.name)}
        if self.reservations is not None:
            granted = self.reservations.reserve(rid, dep.name, dep.owner, per_replica(dep.spec))
            if isinstance(granted, Refusal):
                self._not_placed(dep, granted.message)
                return False
            env.update(granted.env(self.reservations.inventory))
        dep.pending = None
        replica = Replica(rid, self.clock.now(), utc(self.clock), cold=cold)
        dep.replicas[rid] = replica
        self._by_replica[rid] = (dep, replica)
        # Over TCP anyone can dial the gateway: a replica is admitted with the secret it got here.
        secret = secrets.token_urlsafe(24)
        env[SECRET_ENV] = secret
        self.dataplane.expect(rid, dep.name, secret)
        cache = self.cache_dir / dep.name
        cache.mkdir(parents=True, exist_ok=True)
        launch = ReplicaLaunch(rid, dep.spec, self._gateway_address, env=env)
        self._platform_log(dep.name, f"starting replica {rid}")
        try:
            replica.handle = await self.backend.start(launch)
        except Exception as exc:
            replica.error = f"could not start replica: {exc}"
            self._replica_gone(dep, replica, None)
            return True
        self._background(self._await_exit(dep, replica, replica.handle))
        return True

    def _not_placed(self, dep: DeploymentRuntime, reason: str) -> None:
        message = f"replica not started: {reason}"
        if dep.pending != message:
            dep.pending = message
            self._platform_log(dep.name, message)
            self._event(dep.name, "pending", message)
        if not dep.live():
            self.dataplane.fail_waiting(
                dep.name, _unavailable(f"deployment {dep.name!r}: {message}", 5.0)
            )

    def _stop(
        self, dep: DeploymentRuntime, replica: Replica, reason: str, grace: float | None = None
    ) -> None:
        if replica.stop_requested:
            return
        replica.stop_requested = True
        replica.state = "stopping"
        connected = self.dataplane.stop_replica(replica.id)  # finish in-flight, then exit
        self._platform_log(dep.name, f"stopping replica {replica.id}: {reason}")
        if replica.handle is not None:
            if not connected:
                grace = 0.0  # still loading: nothing in flight to finish
            self._background(
                self.backend.stop(replica.handle, self.stop_grace if grace is None else grace)
            )

    async def _await_exit(
        self, dep: DeploymentRuntime, replica: Replica, handle: ReplicaHandle
    ) -> None:
        code = await handle.exited
        self._replica_gone(dep, replica, code)

    def _replica_gone(self, dep: DeploymentRuntime, replica: Replica, code: int | None) -> None:
        if self.dataplane.in_flight(replica.id) > 0:  # its exit may be seen before its hang-up
            replica.during_request = True
        dep.replicas.pop(replica.id, None)
        self._by_replica.pop(replica.id, None)
        if self.reservations is not None:
            self.reservations.release(replica.id)
        self.dataplane.forget(replica.id)
        if self.deployments.get(dep.name) is dep:
            self._publish(dep)
        if replica.stop_requested and not replica.oom:
            self._platform_log(dep.name, f"replica {replica.id} stopped")
            self.wake()
            return
        now = self.clock.now()
        if replica.oom:
            reason, kind = replica.error or "over its memory limit", "oom_killed"
        elif replica.error:
            reason, kind = replica.error, "load_failed"
        elif replica.during_request and replica.ready_at is not None:
            reason = f"replica {replica.id} {describe_exit(code)} while handling a request"
            kind = "request_crash"
        else:
            reason, kind = f"replica {replica.id} {describe_exit(code)}", "crashed"
        ran = now - (replica.ready_at or replica.started_at)
        dep.failures = failures_after_exit(
            dep.failures,
            ran=ran,
            was_ready=replica.ready_at is not None,
            during_request=kind == "request_crash",
            stable_after=STABLE_AFTER,
        )
        dep.restarts += 1
        delay = restart_delay(dep.failures)
        dep.next_start_at = now + delay
        dep.last_error = reason
        dep.last_error_at = utc(self.clock)
        self.metrics.restarts.labels(dep.name, kind).inc()
        if kind == "load_failed" and not self.dataplane.ready_count(dep.name):
            self.dataplane.fail_waiting(
                dep.name,
                _unavailable(
                    f"deployment {dep.name!r} cannot start a replica: {reason}", max(delay, 1.0)
                ),
            )
        self._platform_log(dep.name, f"{reason}; replacing it in {delay:.1f} s")
        self._event(dep.name, kind, reason, replica.id)
        self.wake()
        if delay > 0:
            loop = asyncio.get_running_loop()
            loop.call_later(delay, self.wake)

    def _check_memory(self, dep: DeploymentRuntime) -> None:
        limit = dep.spec.resources.memory
        for replica in dep.live():
            if replica.handle is None:
                continue
            rss = self.backend.memory_bytes(replica.handle)
            if rss is not None and rss > limit:
                replica.oom = True
                replica.error = (
                    f"replica {replica.id} used {rss / 2**20:.0f} MiB, over its memory limit of "
                    f"{limit / 2**20:.0f} MiB, and was stopped"
                )
                self._stop(dep, replica, "over its memory limit", grace=0)

    def _teardown(self, name: str) -> None:
        dep = self.deployments.pop(name)
        if self.reservations is not None:
            self.reservations.forget(name)
        for replica in list(dep.replicas.values()):
            self._stop(dep, replica, "deployment removed", grace=2.0)
        self.dataplane.remove_deployment(name)
        self._background(self.backend.release(name))
        for hook in self.on_removed:
            hook(name)
        for state in ("ready", "starting"):
            with contextlib.suppress(KeyError):
                self.metrics.replicas.remove(name, state)

    # -- what the gateway reports ---------------------------------------------------------------
    def replica_ready(self, replica_id: str, info: dict[str, Any]) -> None:
        found = self._by_replica.get(replica_id)
        if found is None:
            return
        dep, replica = found
        replica.state = "ready"
        replica.ready_at = self.clock.now()
        load = info.get("load_seconds")
        replica.load_seconds = float(load) if isinstance(load, int | float) else None
        metadata = info.get("metadata")
        if isinstance(metadata, dict):
            dep.metadata = metadata
        startup = replica.ready_at - replica.started_at
        self._platform_log(dep.name, f"replica {replica_id} ready in {startup:.3f} s")
        if replica.cold:
            self.metrics.cold_starts.labels(dep.name).inc()
            self.metrics.cold_start_seconds.labels(dep.name).observe(startup)
            dep.cold_starts = [
                *dep.cold_starts[-19:],
                {
                    "at": replica.started_wall.isoformat(),
                    "seconds": round(startup, 4),
                    "load_seconds": replica.load_seconds,
                },
            ]
            self._event(dep.name, "cold_start", f"ready from zero in {startup:.3f} s", replica_id)
        else:
            self._event(dep.name, "ready", f"ready in {startup:.3f} s", replica_id)
        self._publish(dep)

    def replica_load_failed(self, replica_id: str, error: str) -> None:
        found = self._by_replica.get(replica_id)
        if found is not None:
            found[1].error = error

    def replica_lost(self, replica_id: str, in_flight: int = 0) -> None:
        found = self._by_replica.get(replica_id)
        if found is not None and in_flight:
            found[1].during_request = True
        if found is not None and found[1].state == "ready":
            found[1].state = "exiting"
        self.wake()

    # -- what the autoscaler asks ----------------------------------------------------------------
    def live_replicas(self, name: str) -> int:
        dep = self.deployments.get(name)
        return len(dep.live()) if dep else 0

    def record_event(self, name: str, kind: str, message: str) -> None:
        self._platform_log(name, message)
        self._event(name, kind, message)

    # -- reporting ------------------------------------------------------------------------------
    def status(self, name: str) -> dict[str, Any]:
        if self.passive is not None and self.remote_status is not None:
            remote = self.remote_status(name)
            if remote is not None:
                return remote
        dep = self.deployments.get(name)
        if dep is None:
            return {
                "desired": 0,
                "ready": 0,
                "starting": 0,
                "replicas": [],
                "restarts": 0,
                "state": "pending",
            }
        served = self.dataplane.served(name)
        replicas = []
        for r in dep.replicas.values():
            rss = self.backend.memory_bytes(r.handle) if r.handle else None
            replicas.append(
                {
                    "id": r.id,
                    "state": r.state,
                    "pid": r.handle.pid if r.handle else None,
                    "node": r.handle.node if r.handle else None,
                    "node_id": r.handle.node_id if r.handle else None,
                    "started_at": r.started_wall.isoformat(),
                    "load_seconds": r.load_seconds,
                    "memory_bytes": rss,
                    "served": served.get(r.id, (0, 0))[0],
                    "in_flight": served.get(r.id, (0, 0))[1],
                }
            )
        ready = sum(1 for r in dep.replicas.values() if r.state == "ready")
        starting = sum(1 for r in dep.replicas.values() if r.state == "starting")
        want = self.desired(dep, self.clock.now())
        env = self.backend.environment(dep.spec)
        if env is not None and env["state"] == "building" and not ready:
            state = "building"
        elif env is not None and env["state"] == "failed" and not ready:
            state = "failing"
        elif ready >= want and want > 0:
            state = "running"
        elif want == 0:
            state = "idle"
        elif dep.pending and ready + starting < want:
            state = "pending"
        elif dep.failures and not ready:
            state = "failing"
        else:
            state = "starting"
        extra = self.extra_status(name) if self.extra_status else {}
        return {
            **extra,
            "state": state,
            "desired": want,
            "ready": ready,
            "starting": starting,
            "replicas": replicas,
            "restarts": dep.restarts,
            "requests": self.dataplane.requests(name),
            "queued": self.dataplane.queued(name),
            "last_error": dep.last_error,
            "last_error_at": dep.last_error_at.isoformat() if dep.last_error_at else None,
            "model": dep.metadata,
            "cold_starts": dep.cold_starts,
            "pending": dep.pending,
            "environment": env,
        }

    def _publish(self, dep: DeploymentRuntime) -> None:
        ready = sum(1 for r in dep.replicas.values() if r.state == "ready")
        starting = sum(1 for r in dep.replicas.values() if r.state == "starting")
        self.metrics.replicas.labels(dep.name, "ready").set(ready)
        self.metrics.replicas.labels(dep.name, "starting").set(starting)
        scale = dep.spec.scale
        can_grow = starting > 0 or (
            dep.spec.mode is Mode.serverless and len(dep.live()) < scale.max
        )
        self.dataplane.set_limit(
            dep.name, per_replica_limit(scale.target_concurrency, can_grow=can_grow)
        )
        self.metrics.queued.labels(dep.name).set(self.dataplane.queued(dep.name))

    def _platform_log(self, deployment: str, message: str) -> None:
        self.logs.write(deployment, "platform", message)

    def _event(self, deployment: str, kind: str, message: str, replica: str = "") -> None:
        self._background(
            asyncio.to_thread(self.store.add_event, deployment, kind, message, replica)
        )

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done_background)

    def _done_background(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background step failed: %r", task.exception())

    # -- lifecycle ------------------------------------------------------------------------------
    _gateway_address = ""

    def set_gateway_address(self, address: str) -> None:
        self._gateway_address = address

    async def close(self) -> None:
        self._closing = True
        self.wake()
        for dep in self.deployments.values():
            for replica in list(dep.replicas.values()):
                self._stop(dep, replica, "platform stopping", grace=2.0)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        await self.backend.close()


def describe_exit(code: int | None) -> str:
    if code is None:
        return "could not be started"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _unavailable(message: str, retry_after: float) -> Unavailable:
    return Unavailable(
        message, hint="check `modelplane status` and `modelplane logs`", retry_after=retry_after
    )
