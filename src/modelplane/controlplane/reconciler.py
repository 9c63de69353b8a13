"""The reconciler: drives the replicas that run toward the deployments that are stored.

It wakes on every change (a deploy, a replica ready, a replica gone) and at a short interval,
reads the desired state from the store, asks the lifecycle decider
(:mod:`modelplane.controlplane.lifecycle`) what to do, and does it through the runtime backend
and the data plane's narrow methods. What it decides nothing about: the crash backoff, memory
policing and scale-down order are the decider's; the status document is
:mod:`modelplane.controlplane.status`'s; what each replica is, :mod:`~.runtime`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from modelplane.backends.base import ReplicaHandle, ReplicaLaunch, RuntimeBackend
from modelplane.clock import Clock, utc
from modelplane.controlplane import lifecycle
from modelplane.controlplane.journal import Journal
from modelplane.controlplane.runtime import DeploymentRuntime, DesiredFn, Replica, fixed_desired
from modelplane.controlplane.status import deployment_status, unknown_status
from modelplane.errors import Unavailable
from modelplane.gateway.balance import per_replica_limit
from modelplane.gateway.dataplane import DataPlane
from modelplane.logs import LogBook
from modelplane.metrics import Metrics
from modelplane.resources.placement import Refusal
from modelplane.resources.reservations import ReservationBook, per_replica
from modelplane.spec import DeploymentSpec, Mode
from modelplane.store import Store
from modelplane.worker.main import SECRET_ENV

log = logging.getLogger("modelplane.reconciler")


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
        self.journal = Journal(store, logs, metrics, self._background)
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
            for stop in lifecycle.memory_stops(dep.spec.resources.memory, self._views(dep, True)):
                self._act(dep, stop)
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
            if dep is not None and dep.generation == row.generation:
                continue
            spec = DeploymentSpec.model_validate(row.spec)
            if self.reservations is not None:
                self.reservations.commit(row.name, row.owner, spec)
            if dep is None:
                self.deployments[row.name] = DeploymentRuntime(
                    row.name, row.owner, spec, row.generation
                )
                self.dataplane.add_deployment(row.name, row.owner)
            else:  # a new spec is a fresh start: no crash loop to wait out
                dep.spec, dep.generation, dep.crashes = spec, row.generation, dep.crashes.reset()
                for replica in dep.live():  # replaced by replicas of the new spec
                    self._stop(dep, replica, "spec updated")
                self._background(self.backend.release(dep.name, keep=spec))
            self._background(self._prepare(spec))
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
        env = self.backend.environment(dep.spec)
        actions = lifecycle.decide(want, self._views(dep), dep.crashes, now, environment=env)
        for action in actions:
            if isinstance(action, lifecycle.Start):
                if not await self._start(dep, cold=action.cold):
                    break  # no room: the reason is kept as the deployment's pending
            else:
                self._act(dep, action)
        if len(dep.live()) >= want:
            dep.pending = None
        self._publish(dep)

    def _views(self, dep: DeploymentRuntime, memory: bool = False) -> list[lifecycle.ReplicaView]:
        load = self.dataplane.load(dep.name)
        rss = self._memory(dep) if memory else {}
        return [r.view(load.get(r.id, 0), rss.get(r.id)) for r in dep.replicas.values()]

    def _memory(self, dep: DeploymentRuntime) -> dict[str, int | None]:
        return {
            r.id: self.backend.memory_bytes(r.handle) if r.handle is not None else None
            for r in dep.replicas.values()
        }

    def _act(self, dep: DeploymentRuntime, action: lifecycle.Action) -> None:
        """Carry out one of the decider's actions that need no await (all but a start)."""
        if isinstance(action, lifecycle.Stop) and action.replica in dep.replicas:
            replica = dep.replicas[action.replica]
            if action.oom is not None:
                replica.oom, replica.error = True, action.oom
            self._stop(dep, replica, action.reason, grace=action.grace)
        elif isinstance(action, lifecycle.WaitUntil) and dep.wake_at != action.at:
            dep.wake_at = action.at  # once per backoff, not once per pass
            delay = max(action.at - self.clock.now(), 0.0)
            asyncio.get_running_loop().call_later(delay, self.wake)
        elif isinstance(action, lifecycle.EnvironmentFailed):
            self._environment_failed(dep, action.reason)

    async def _prepare(self, spec: DeploymentSpec) -> None:
        """Warm up what replicas of ``spec`` need (its environment, a template), then look again."""
        try:
            await self.backend.prepare(spec)
        finally:
            self.wake()

    def _environment_failed(self, dep: DeploymentRuntime, reason: str) -> None:
        """Reported once, as the deployment's error; waiting requests are answered each pass."""
        if dep.last_error != reason:
            dep.failed(reason, utc(self.clock))
            self.journal.note(dep.name, "environment_failed", reason)
        self.dataplane.fail_waiting(
            dep.name, _unavailable(f"deployment {dep.name!r}: {reason}", 30)
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
        env[SECRET_ENV] = secret = secrets.token_urlsafe(24)
        self.dataplane.expect(rid, dep.name, secret)
        (self.cache_dir / dep.name).mkdir(parents=True, exist_ok=True)
        launch = ReplicaLaunch(rid, dep.spec, self._gateway_address, env=env)
        self.journal.log(dep.name, f"starting replica {rid}")
        try:
            replica.handle = await self.backend.start(launch)
        except Exception as exc:
            replica.error = f"could not start replica: {exc}"
            self._replica_gone(dep, replica, None)
            return True
        self._background(self._await_exit(dep, replica, replica.handle))
        return True

    def _not_placed(self, dep: DeploymentRuntime, refusal: str) -> None:
        outcome = lifecycle.not_placed(dep.pending, refusal, len(dep.live()))
        dep.pending = outcome.message
        if outcome.announce:
            self.journal.note(dep.name, "pending", outcome.message)
        if outcome.fails_waiting:
            self.dataplane.fail_waiting(
                dep.name, _unavailable(f"deployment {dep.name!r}: {outcome.message}", 5.0)
            )

    def _stop(
        self, dep: DeploymentRuntime, replica: Replica, reason: str, grace: float | None = None
    ) -> None:
        if replica.stop_requested:
            return
        replica.stop_requested = True
        replica.state = "stopping"
        connected = self.dataplane.stop_replica(replica.id)  # finish in-flight, then exit
        self.journal.log(dep.name, f"stopping replica {replica.id}: {reason}")
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
        crash = lifecycle.after_exit(replica.exit(code), dep.crashes, self.clock.now())
        if crash is None:
            self.journal.log(dep.name, f"replica {replica.id} stopped")
            self.wake()
            return
        dep.crashes = crash.history
        dep.failed(crash.reason, utc(self.clock))
        if crash.fails_waiting and not self.dataplane.ready_count(dep.name):
            message = f"deployment {dep.name!r} cannot start a replica: {crash.reason}"
            self.dataplane.fail_waiting(dep.name, _unavailable(message, max(crash.delay, 1.0)))
        self.journal.crash(dep.name, replica.id, crash)
        self.wake()  # the next pass starts the replacement, or waits out the backoff

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
        self.journal.forget(name)

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
        self.journal.ready(dep, replica, replica.ready_at - replica.started_at)
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
        self.journal.note(name, kind, message)

    # -- reporting ------------------------------------------------------------------------------
    def status(self, name: str) -> dict[str, Any]:
        if self.passive is not None and self.remote_status is not None:
            remote = self.remote_status(name)
            if remote is not None:
                return remote
        dep = self.deployments.get(name)
        if dep is None:
            return unknown_status()
        return deployment_status(
            dep,
            want=self.desired(dep, self.clock.now()),
            environment=self.backend.environment(dep.spec),
            served=self.dataplane.served(name),
            memory=self._memory(dep),
            requests=self.dataplane.requests(name),
            queued=self.dataplane.queued(name),
            extra=self.extra_status(name) if self.extra_status else None,
        )

    def _publish(self, dep: DeploymentRuntime) -> None:
        """Tell the data plane how many requests each replica takes, and the gauges what is."""
        scale = dep.spec.scale
        can_grow = dep.count("starting") > 0 or (
            dep.spec.mode is Mode.serverless and len(dep.live()) < scale.max
        )
        self.dataplane.set_limit(
            dep.name, per_replica_limit(scale.target_concurrency, can_grow=can_grow)
        )
        self.journal.gauges(dep, self.dataplane.queued(dep.name))

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


def _unavailable(message: str, retry_after: float) -> Unavailable:
    return Unavailable(
        message, hint="check `modelplane status` and `modelplane logs`", retry_after=retry_after
    )
