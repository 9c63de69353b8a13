"""The gateway: the hot prediction path, with everything else handed to the control plane.

Routing is a few byte comparisons; a prediction is authenticated against a token cache, given to
its deployment's pool and answered from the replica's response callback. No task is created and
no JSON is decoded here: the body goes to the replica as it came.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson

from modelplane.errors import DeploymentNotFound, TooManyRequests, Unauthenticated
from modelplane.gateway.http import HttpConnection, Request
from modelplane.gateway.pool import DeploymentPool
from modelplane.gateway.replicas import ReplicaConnection, ResponseCallback
from modelplane.metrics import Metrics
from modelplane.resources.ratelimit import RateLimiter
from modelplane.security import Authenticate, Principal
from modelplane.worker.protocol import error_body

STATUS_META = b"\x00status"
"""A relayed request with this meta asks for the deployment's status (no front starts with NUL)."""

PREDICT_PREFIX = b"/api/v1/deployments/"
PREDICT_SUFFIX = b"/predict"
_JSON = b"application/json"
_RETRY = b"retry-after: 2\r\n"


class ReplicaEvents(Protocol):
    """What the gateway tells the runtime about replicas (the reconciler implements it)."""

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


class Gateway:
    def __init__(
        self,
        authenticate: Authenticate,
        metrics: Metrics,
        fallback: Callable[[Request, HttpConnection], None],
        *,
        queue_limit: int = 1000,
        queue_timeout: float = 60.0,
        request_timeout: float = 120.0,
    ) -> None:
        self.authenticate = authenticate
        self.metrics = metrics
        self.fallback = fallback
        self.queue_limit = queue_limit
        self.queue_timeout = queue_timeout
        self.request_timeout = request_timeout
        self._sweep_handle: asyncio.TimerHandle | None = None
        self.pools: dict[str, DeploymentPool] = {}
        self.replicas: dict[str, ReplicaConnection] = {}
        self.expected: dict[str, str] = {}
        self.events: ReplicaEvents = _NoEvents()
        self.on_demand: Callable[[str], None] | None = None
        self.fronts: list[tuple[bytes, Callable[[Request, HttpConnection], None]]] = []
        self.limiter: RateLimiter | None = None
        """Requests per second per token, on predictions and the REST API; None: no limit."""
        self._secrets: dict[str, str] = {}
        self.relay_secret: str | None = None
        """Set: other platform processes that know it may relay requests here (see relay.py)."""
        self.status_of: Callable[[str], dict[str, Any]] | None = None
        """A deployment's status, for relays that ask (the reconciler's, on the leader)."""

    # -- deployments and replicas (called by the reconciler) ----------------------------------
    def add_deployment(self, name: str, owner: str) -> DeploymentPool:
        pool = self.pools.get(name)
        if pool is None:
            pool = self.pools[name] = DeploymentPool(
                name,
                owner,
                queue_limit=self.queue_limit,
                queue_timeout=self.queue_timeout,
                on_demand=self.on_demand,
            )
        return pool

    def remove_deployment(self, name: str) -> None:
        pool = self.pools.pop(name, None)
        if pool is not None:
            pool.close(f"deployment {name!r} was removed")
        self.metrics.forget(name)

    def expect(self, replica_id: str, deployment: str, secret: str | None = None) -> None:
        """A replica is starting; only expected replicas (with ``secret``, if given) may join."""
        self.expected[replica_id] = deployment
        if secret is not None:
            self._secrets[replica_id] = secret

    def forget(self, replica_id: str) -> None:
        self.expected.pop(replica_id, None)
        self._secrets.pop(replica_id, None)
        replica = self.replicas.pop(replica_id, None)
        if replica is not None:
            pool = self.pools.get(replica.deployment)
            if pool is not None:
                pool.remove(replica)

    def on_hello(self, replica: ReplicaConnection, info: dict[str, Any]) -> None:
        if "relay" in info:
            self._admit_relay(replica, info)
            return
        deployment = self.expected.get(replica.replica_id)
        if deployment is None or deployment != replica.deployment:
            replica.close()  # not ours, or already stopped: never route to it
            return
        secret = self._secrets.get(replica.replica_id)
        if secret is not None and not hmac.compare_digest(
            str(info.get("secret", "")).encode(), secret.encode()
        ):
            replica.close()  # someone who knows a replica id but not its secret
            return
        if "error" in info:
            self.events.replica_load_failed(replica.replica_id, str(info["error"]))
            replica.close()  # the replica exits once we hang up, after the error is recorded
            return
        pool = self.pools.get(deployment)
        if pool is None:
            replica.stop()
            return
        self.replicas[replica.replica_id] = replica
        pool.add(replica)
        self.events.replica_ready(replica.replica_id, info)

    def _admit_relay(self, conn: ReplicaConnection, info: dict[str, Any]) -> None:
        secret = self.relay_secret
        given = str(info.get("secret", "")).encode()
        if secret is None or not hmac.compare_digest(given, secret.encode()):
            conn.close()
            return
        name = str(info["relay"])

        def relay(ctype: bytes, body: bytes, reply: ResponseCallback, meta: bytes) -> None:
            if meta == STATUS_META:
                status = self.status_of(name) if self.status_of is not None else None
                reply(200, _JSON, orjson.dumps(status))
                return
            pool = self.pools.get(name)
            if pool is None:
                reply(404, _JSON, error_body(DeploymentNotFound(name)))
                return
            pool.submit(ctype, body, reply, meta)

        conn.relay = relay

    def on_lost(self, replica: ReplicaConnection) -> None:
        if self.replicas.get(replica.replica_id) is replica:
            del self.replicas[replica.replica_id]
            pool = self.pools.get(replica.deployment)
            if pool is not None:
                pool.remove(replica)
            self.events.replica_lost(replica.replica_id, replica.lost_in_flight)

    def demand(self, name: str) -> tuple[int, int, int] | None:
        """In flight on ready replicas, waiting for one, and requests so far (for autoscaling)."""
        pool = self.pools.get(name)
        if pool is None:
            return None
        return sum(r.in_flight for r in pool.ready), len(pool.queue), pool.requests

    def start_timeouts(self, interval: float = 0.5) -> None:
        """Answer 504 for requests a replica holds longer than ``request_timeout``."""
        loop = asyncio.get_running_loop()

        def sweep() -> None:
            now = loop.time()
            for replica in list(self.replicas.values()):
                if replica.in_flight:
                    replica.expire(now, self.request_timeout)
            self._sweep_handle = loop.call_later(interval, sweep)

        self._sweep_handle = loop.call_later(interval, sweep)

    def stop_timeouts(self) -> None:
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()

    # -- HTTP -------------------------------------------------------------------------------
    def __call__(self, req: Request, conn: HttpConnection) -> None:
        url = req.url
        if url.startswith(PREDICT_PREFIX) and req.method == b"POST":
            path = url.partition(b"?")[0]
            if path.endswith(PREDICT_SUFFIX):
                name = path[len(PREDICT_PREFIX) : -len(PREDICT_SUFFIX)]
                if name and b"/" not in name:
                    # Errors (401, 404, 429) are raised; the HTTP layer answers them.
                    self.forward(name.decode("latin-1"), req, conn, b"")
                    return
        for prefix, handler in self.fronts:
            if url.startswith(prefix):
                handler(req, conn)
                return
        self.fallback(req, conn)

    def add_front(self, prefix: bytes, handler: Callable[[Request, HttpConnection], None]) -> None:
        """Route requests whose URL starts with ``prefix`` to a protocol front's handler."""
        self.fronts.append((prefix, handler))

    def pool_for(self, name: str, req: Request) -> DeploymentPool:
        """The caller's deployment ``name``, or the error to answer (401, 404)."""
        return self._pool(name, self._principal(req))

    def _principal(self, req: Request) -> Principal:
        principal = self.authenticate(req.authorization)
        if principal is None:
            raise Unauthenticated(
                "a valid bearer token is required",
                hint="send `Authorization: Bearer <token>`; `modelplane up` prints one",
            )
        return principal

    def _pool(self, name: str, principal: Principal) -> DeploymentPool:
        pool = self.pools.get(name)
        if pool is None or not principal.can_predict(name, pool.owner):
            raise DeploymentNotFound(name)
        return pool

    def check_rate(self, principal: Principal) -> None:
        """Raise 429 when ``principal``'s token is over the rate limit."""
        limiter = self.limiter
        if limiter is not None and principal.token is not None:
            wait = limiter.check(principal.token, time.monotonic())
            if wait:
                raise TooManyRequests(
                    f"over the limit of {limiter.rate:g} requests per second for this token",
                    hint="slow down; Retry-After says when to try again",
                    retry_after=wait,
                )

    def forward(
        self,
        name: str,
        req: Request,
        conn: HttpConnection,
        meta: bytes,
        respond: Callable[[int, bytes, bytes], None] | None = None,
    ) -> None:
        """Send a front's request to a replica of ``name``; ``respond`` may rewrite the answer.

        Raises the 401/404 errors of :meth:`pool_for` and 429 over the rate limit; the HTTP
        layer answers them.
        """
        principal = self._principal(req)
        self.check_rate(principal)  # counted here, once per request that reaches a replica
        pool = self._pool(name, principal)
        started = time.perf_counter()
        observe = self.metrics.observe_request

        def done(status: int, content_type: bytes, body: bytes) -> None:
            observe(name, status, time.perf_counter() - started)
            if respond is not None:
                respond(status, content_type, body)
            else:
                conn.respond(status, body, content_type, _RETRY if status == 503 else b"")

        pool.submit(req.content_type or _JSON, req.body, done, meta)
