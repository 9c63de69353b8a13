"""The replicas of one deployment as the gateway sees them, and the queue of waiting requests.

A request that finds no ready replica (a dedicated deployment still starting, a serverless one at
zero, or every replica just replaced) waits in a bounded queue and is released the moment a
replica says hello. A full queue answers 503 with Retry-After at once; a request that waits past
its deadline gets 503 too. Nothing hangs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from modelplane.clock import Clock, SystemClock
from modelplane.errors import Unavailable
from modelplane.gateway.balance import least_loaded
from modelplane.gateway.replicas import ReplicaConnection
from modelplane.gateway.reply import OnReply, Reply


@dataclass
class _Waiting:
    deadline: float
    content_type: bytes
    body: bytes | bytearray
    callback: OnReply
    meta: bytes


class DeploymentPool:
    def __init__(
        self,
        name: str,
        owner: str,
        *,
        queue_limit: int = 1000,
        queue_timeout: float = 60.0,
        on_demand: Callable[[str], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self.clock: Clock = clock or SystemClock()
        self.owner = owner
        self.ready: list[ReplicaConnection] = []
        self.queue: deque[_Waiting] = deque()
        self.queue_limit = queue_limit
        self.queue_timeout = queue_timeout
        self.on_demand = on_demand
        self.requests = 0
        self.service_times: deque[float] = deque(maxlen=512)
        """The most recent answers' service times on any replica (seconds), for the advisor."""
        self.limit = 0
        """Requests in flight per replica while the deployment can still grow (0: no limit).

        Like Knative's activator: while more replicas are starting or could be started, a
        replica takes at most its target concurrency and the rest wait here, poking the
        autoscaler — so a burst from zero spreads over the replicas it causes instead of piling
        onto the first one that happens to be ready. At its maximum size, a deployment takes
        everything it is sent."""
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    # -- the hot path -------------------------------------------------------------------------
    def submit(
        self,
        content_type: bytes,
        body: bytes | bytearray,
        callback: OnReply,
        meta: bytes = b"",
    ) -> None:
        """Send to the least loaded ready replica, or wait for one. ``meta``: see frames."""
        self.requests += 1
        ready = self.ready
        if ready:
            replica = ready[0] if len(ready) == 1 else least_loaded(ready)
            if not self.limit:
                replica.send(content_type, body, callback, meta)
                return
            if replica.in_flight < self.limit:
                replica.send(content_type, body, self._then_drain(callback), meta)
                return
        self._enqueue(content_type, body, callback, meta)

    def _then_drain(self, callback: OnReply) -> OnReply:
        def done(reply: Reply) -> None:
            callback(reply)
            self._drain()

        return done

    def set_limit(self, limit: int) -> None:
        self.limit = max(0, limit)
        self._drain()

    @property
    def in_flight(self) -> int:
        return sum(r.in_flight for r in self.ready) + len(self.queue)

    # -- replicas coming and going --------------------------------------------------------------
    def add(self, replica: ReplicaConnection) -> None:
        replica.service_times = self.service_times
        self.ready.append(replica)
        self._drain()

    def remove(self, replica: ReplicaConnection) -> None:
        if replica in self.ready:
            self.ready.remove(replica)

    def close(self, reason: str) -> None:
        """The deployment is gone: answer everyone still waiting."""
        hint = "check `modelplane status` and `modelplane logs`"
        self.fail_waiting(Unavailable(reason, hint=hint, retry_after=5.0))

    def fail_waiting(self, error: Unavailable) -> None:
        """Answer every waiting request with ``error`` (e.g. the model cannot load)."""
        self._cancel_timer()
        failed = Reply.failed(error)
        while self.queue:
            self.queue.popleft().callback(failed)

    # -- the wait queue -------------------------------------------------------------------------
    def _enqueue(
        self,
        content_type: bytes,
        body: bytes | bytearray,
        callback: OnReply,
        meta: bytes,
    ) -> None:
        if len(self.queue) >= self.queue_limit:
            err = Unavailable(
                f"deployment {self.name!r} has no ready replica and {len(self.queue)} requests "
                "already waiting",
                hint="retry after the delay in Retry-After",
                retry_after=2,
            )
            callback(Reply.failed(err))
            return
        now = self.clock.now()
        self.queue.append(_Waiting(now + self.queue_timeout, content_type, body, callback, meta))
        if self._timer is None:
            self._timer = self._loop.call_later(0.25, self._expire)
        if self.on_demand is not None:
            self.on_demand(self.name)

    def _drain(self) -> None:
        while self.queue and self.ready:
            replica = least_loaded(self.ready)
            if self.limit and replica.in_flight >= self.limit:
                break
            w = self.queue.popleft()
            callback = self._then_drain(w.callback) if self.limit else w.callback
            replica.send(w.content_type, w.body, callback, w.meta)
        if not self.queue:
            self._cancel_timer()

    def _expire(self) -> None:
        self._timer = None
        self.expire_waiting(self.clock.now())
        if self.queue:
            self._timer = self._loop.call_later(0.25, self._expire)

    def expire_waiting(self, now: float) -> int:
        """Answer 503 to the requests that have waited ``queue_timeout`` by ``now``; how many.
        A timer calls it every 0.25 s while anyone waits."""
        expired = 0
        while self.queue and self.queue[0].deadline <= now:
            w = self.queue.popleft()
            err = Unavailable(
                f"no replica of deployment {self.name!r} became ready within "
                f"{self.queue_timeout:g} s",
                hint="check `modelplane status` and `modelplane logs` for load errors",
                retry_after=5,
            )
            w.callback(Reply.failed(err))
            expired += 1
        return expired

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
