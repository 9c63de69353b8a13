"""The data plane: the one entry through which every prediction reaches a replica.

Whoever asks — the native HTTP path, the Open Inference Protocol and DEEPaaS fronts, OSCAR's
``/run`` (and ``/job``, through the job runner), the REST route, the job runner, a batch run — calls
:meth:`DataPlane.submit` (callback, no task: the HTTP hot path) or ``await``
:meth:`DataPlane.predict`. There, once: the caller is authenticated (unless the caller already
is), held to the rate limit, allowed or not to use the deployment, queued or sent to the least
loaded ready replica, and measured. The answer is a :class:`~modelplane.gateway.reply.Reply`:
the replica's bytes, or a typed error the edge renders in its protocol's shape.

No task is created and no JSON is decoded here: the body goes to the replica as it came.

The reconciler and the autoscaler see the replicas through the narrow methods below
(``expect``/``forget``/``stop_replica``/``fail_waiting``/``set_limit``, ``load``, ``served``,
``queued``, ``requests``, ``demand``), never through the dicts behind them.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson

from modelplane.clock import Clock, SystemClock
from modelplane.errors import (
    DeploymentNotFound,
    ModelplaneError,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
)
from modelplane.gateway.pool import DeploymentPool
from modelplane.gateway.replicas import ReplicaConnection
from modelplane.gateway.reply import OnReply, PredictRequest, Reply
from modelplane.metrics import Metrics
from modelplane.resources.ratelimit import RateLimiter
from modelplane.security import PLATFORM, Authenticate, Principal

_JSON = b"application/json"
STATUS_META = b"\x00status"
"""A relayed request with this meta asks for the deployment's status (no front starts with NUL)."""

__all__ = ["STATUS_META", "DataPlane", "PredictRequest", "ReplicaEvents"]


class ReplicaEvents(Protocol):
    """What the data plane tells the runtime about replicas (the reconciler implements it)."""

    def replica_ready(self, replica_id: str, info: dict[str, Any]) -> None: ...
    def replica_load_failed(self, replica_id: str, error: str) -> None: ...
    def replica_lost(self, replica_id: str, in_flight: int = 0) -> None:
        """The replica hung up; ``in_flight`` requests were still waiting for it."""
        ...


class _NoEvents:
    def replica_ready(self, replica_id: str, info: dict[str, Any]) -> None:
        pass

    def replica_load_failed(self, replica_id: str, error: str) -> None:
        pass

    def replica_lost(self, replica_id: str, in_flight: int = 0) -> None:
        pass


class DataPlane:
    def __init__(
        self,
        authenticate: Authenticate,
        metrics: Metrics,
        *,
        queue_limit: int = 1000,
        queue_timeout: float = 60.0,
        request_timeout: float = 120.0,
        limiter: RateLimiter | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.authenticate = authenticate
        self.metrics = metrics
        self.queue_limit = queue_limit
        self.queue_timeout = queue_timeout
        self.request_timeout = request_timeout
        self.limiter = limiter
        """Requests per second per token, on predictions and the REST API; None: no limit."""
        self.clock: Clock = clock or SystemClock()
        self.events: ReplicaEvents = _NoEvents()
        self.on_demand: Callable[[str], None] | None = None
        self.relay_secret: str | None = None
        """Set: other platform processes that know it may relay requests here (see relay.py)."""
        self.status_of: Callable[[str], dict[str, Any]] | None = None
        """A deployment's status, for relays that ask (the reconciler's, on the leader)."""
        self._pools: dict[str, DeploymentPool] = {}
        self._replicas: dict[str, ReplicaConnection] = {}
        self._expected: dict[str, str] = {}
        self._secrets: dict[str, str] = {}
        self._sweep_handle: asyncio.TimerHandle | None = None

    # -- the entry --------------------------------------------------------------------------------
    def submit(self, deployment: str, request: PredictRequest, on_reply: OnReply) -> None:
        """Run ``request`` on a replica of ``deployment``; ``on_reply`` gets the answer once.

        Refusals (401, 404, 429) are answered through ``on_reply`` too, before anything is
        queued; nothing is raised."""
        try:
            principal = request.principal
            if principal is None:
                principal = self.principal(request.authorization)
                self.check_rate(principal)  # counted here, once per prediction
                pool = self._pool(deployment, principal)
            else:
                self.check_rate(principal)
                pool = self._allowed(deployment)
        except ModelplaneError as exc:
            on_reply(Reply.failed(exc))
            return
        started = time.perf_counter()
        observe = self.metrics.observe_request

        def done(reply: Reply) -> None:
            observe(deployment, reply.status, time.perf_counter() - started)
            on_reply(reply)

        pool.submit(request.content_type or _JSON, request.body, done, request.meta)

    async def predict(self, deployment: str, request: PredictRequest) -> Reply:
        """:meth:`submit`, awaited: for callers that run in a task anyway."""
        answer: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()

        def on_reply(reply: Reply) -> None:
            if not answer.done():
                answer.set_result(reply)

        self.submit(deployment, request, on_reply)
        return await answer

    # -- who may ask ------------------------------------------------------------------------------
    def principal(self, authorization: bytes) -> Principal:
        """The caller of a raw ``Authorization`` header, or 401."""
        principal = self.authenticate(authorization)
        if principal is None:
            raise Unauthenticated(
                "a valid bearer token is required",
                hint="send `Authorization: Bearer <token>`; `modelplane up` prints one",
            )
        return principal

    def check_rate(self, principal: Principal) -> None:
        """Raise 429 when ``principal``'s token is over the rate limit."""
        limiter = self.limiter
        if limiter is not None and principal.token is not None:
            wait = limiter.check(principal.token, self.clock.now())
            if wait:
                raise TooManyRequests(
                    f"over the limit of {limiter.rate:g} requests per second for this token",
                    hint="slow down; Retry-After says when to try again",
                    retry_after=wait,
                )

    def check(self, deployment: str, authorization: bytes) -> None:
        """401 or 404 unless the header's caller may use ``deployment`` (for probes and
        documents a front answers itself, without a prediction)."""
        self._pool(deployment, self.principal(authorization))

    def _allowed(self, name: str) -> DeploymentPool:
        pool = self._pools.get(name)
        if pool is None:
            raise DeploymentNotFound(name)
        return pool

    def _pool(self, name: str, principal: Principal) -> DeploymentPool:
        pool = self._pools.get(name)
        if pool is None or not principal.can_predict(name, pool.owner):
            raise DeploymentNotFound(name)
        return pool

    # -- deployments and replicas (the reconciler) ------------------------------------------------
    def add_deployment(self, name: str, owner: str) -> None:
        if name not in self._pools:
            self._pools[name] = DeploymentPool(
                name,
                owner,
                queue_limit=self.queue_limit,
                queue_timeout=self.queue_timeout,
                on_demand=self.on_demand,
                clock=self.clock,
            )

    def remove_deployment(self, name: str) -> None:
        pool = self._pools.pop(name, None)
        if pool is not None:
            pool.close(f"deployment {name!r} was removed")
        self.metrics.forget(name)

    def expect(self, replica_id: str, deployment: str, secret: str) -> None:
        """A replica is starting; only its hello with ``secret`` joins ``deployment``.

        Every replica gets a secret of its own, whichever socket it dials: over TCP anyone can
        connect, and over the local Unix socket so can every other sandboxed replica."""
        if not secret:
            raise ValueError("a replica needs a secret")
        self._expected[replica_id] = deployment
        self._secrets[replica_id] = secret

    def forget(self, replica_id: str) -> None:
        self._expected.pop(replica_id, None)
        self._secrets.pop(replica_id, None)
        replica = self._replicas.pop(replica_id, None)
        if replica is not None:
            pool = self._pools.get(replica.deployment)
            if pool is not None:
                pool.remove(replica)

    def stop_replica(self, replica_id: str) -> bool:
        """Take the replica out of its pool and ask it to finish what it has and exit.
        False: it never connected (still loading), so nothing is in flight on it."""
        replica = self._replicas.get(replica_id)
        self.forget(replica_id)
        if replica is None:
            return False
        replica.stop()
        return True

    def fail_waiting(self, name: str, error: Unavailable) -> None:
        """Answer every request waiting for a replica of ``name`` with ``error`` (the model
        cannot load, the node is full), with the error's own Retry-After."""
        pool = self._pools.get(name)
        if pool is not None:
            pool.fail_waiting(error)

    def set_limit(self, name: str, limit: int) -> None:
        """Requests per replica while the deployment can still grow (see DeploymentPool)."""
        pool = self._pools.get(name)
        if pool is not None:
            pool.set_limit(limit)

    def on_hello(self, replica: ReplicaConnection, info: dict[str, Any]) -> None:
        if "relay" in info:
            self._admit_relay(replica, info)
            return
        deployment = self._expected.get(replica.replica_id)
        if deployment is None or deployment != replica.deployment:
            replica.close()  # not ours, or already stopped: never route to it
            return
        secret = self._secrets.get(replica.replica_id, "")
        given = str(info.get("secret", "")).encode()
        if not secret or not hmac.compare_digest(given, secret.encode()):
            replica.close()  # someone who knows a replica id but not its secret
            return
        if "error" in info:
            self.events.replica_load_failed(replica.replica_id, str(info["error"]))
            replica.close()  # the replica exits once we hang up, after the error is recorded
            return
        pool = self._pools.get(deployment)
        if pool is None:
            replica.stop()
            return
        self._replicas[replica.replica_id] = replica
        pool.add(replica)
        self.events.replica_ready(replica.replica_id, info)

    def _admit_relay(self, conn: ReplicaConnection, info: dict[str, Any]) -> None:
        """Another platform process relays predictions of one deployment here: they enter
        through the same entry, as the platform (the follower authenticated the caller)."""
        secret = self.relay_secret
        given = str(info.get("secret", "")).encode()
        if secret is None or not hmac.compare_digest(given, secret.encode()):
            conn.close()
            return
        name = str(info["relay"])

        def relay(ctype: bytes, body: bytes, on_reply: OnReply, meta: bytes) -> None:
            if meta == STATUS_META:
                status = self.status_of(name) if self.status_of is not None else None
                on_reply(Reply(200, _JSON, orjson.dumps(status)))
                return
            request = PredictRequest(ctype, body, principal=PLATFORM, meta=meta)
            self.submit(name, request, on_reply)

        conn.relay = relay

    # -- links that are not replicas (a follower's relays to the leader) ---------------------------
    def add_link(self, name: str, link: ReplicaConnection) -> bool:
        """Serve ``name`` through ``link`` as if it were a ready replica. False: no such
        deployment."""
        pool = self._pools.get(name)
        if pool is None:
            return False
        pool.add(link)
        return True

    def remove_link(self, name: str, link: ReplicaConnection) -> None:
        pool = self._pools.get(name)
        if pool is not None:
            pool.remove(link)

    def names(self) -> list[str]:
        """The deployments the data plane serves."""
        return list(self._pools)

    def on_lost(self, replica: ReplicaConnection) -> None:
        if self._replicas.get(replica.replica_id) is replica:
            del self._replicas[replica.replica_id]
            pool = self._pools.get(replica.deployment)
            if pool is not None:
                pool.remove(replica)
            self.events.replica_lost(replica.replica_id, replica.lost_in_flight)

    # -- what the reconciler, the autoscaler and the fronts read ----------------------------------
    def has(self, name: str) -> bool:
        return name in self._pools

    def owner(self, name: str) -> str | None:
        pool = self._pools.get(name)
        return pool.owner if pool else None

    def load(self, name: str) -> dict[str, int]:
        """Requests in flight on each ready replica of ``name``."""
        pool = self._pools.get(name)
        return {r.replica_id: r.in_flight for r in pool.ready} if pool else {}

    def served(self, name: str) -> dict[str, tuple[int, int]]:
        """``replica id -> (requests served, in flight)`` for the ready replicas of ``name``."""
        pool = self._pools.get(name)
        return {r.replica_id: (r.served, r.in_flight) for r in pool.ready} if pool else {}

    def in_flight(self, replica_id: str) -> int:
        """Requests a connected replica holds now (0 once it hung up)."""
        replica = self._replicas.get(replica_id)
        return replica.in_flight if replica is not None else 0

    def ready_count(self, name: str) -> int:
        pool = self._pools.get(name)
        return len(pool.ready) if pool else 0

    def service_times(self, name: str) -> list[float]:
        """Recent seconds the replicas of ``name`` spent per request (for the advisor)."""
        pool = self._pools.get(name)
        return list(pool.service_times) if pool else []

    def ready_total(self) -> int:
        """Ready replicas over every deployment."""
        return sum(len(p.ready) for p in self._pools.values())

    def queued(self, name: str) -> int:
        pool = self._pools.get(name)
        return len(pool.queue) if pool else 0

    def requests(self, name: str) -> int:
        pool = self._pools.get(name)
        return pool.requests if pool else 0

    def demand(self, name: str) -> tuple[int, int, int] | None:
        """In flight on ready replicas, waiting for one, and requests so far (for autoscaling)."""
        pool = self._pools.get(name)
        if pool is None:
            return None
        return sum(r.in_flight for r in pool.ready), len(pool.queue), pool.requests

    # -- request timeouts -------------------------------------------------------------------------
    def start_timeouts(self, interval: float = 0.5) -> None:
        """Answer 504 for requests a replica holds longer than ``request_timeout``."""
        loop = asyncio.get_running_loop()

        def sweep() -> None:
            now = loop.time()
            for replica in list(self._replicas.values()):
                if replica.in_flight:
                    replica.expire(now, self.request_timeout)
            self._sweep_handle = loop.call_later(interval, sweep)

        self._sweep_handle = loop.call_later(interval, sweep)

    def stop_timeouts(self) -> None:
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
