"""Relays: how a platform process that does not lead serves predictions.

Replicas are started by the leader (the only process running the reconciler) and dial the
leader's gateway. Every other platform process keeps, per deployment, one relay: a connection to
the leader's replica listener that speaks the replicas' own frames with the roles swapped. To the
follower's pool the relay looks like one ready replica; the leader hands what arrives on it to the
deployment's real pool. So a prediction sent to any process takes the same path (queue while at
zero, autoscaling on the whole load, least-loaded replica choice) at the cost of one hop between
platform processes; and while the lease moves to a new leader, requests wait in the follower's
queue and go out the moment the relay to the new leader is up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import orjson

from modelplane.gateway.dataplane import STATUS_META
from modelplane.gateway.replicas import ReplicaConnection
from modelplane.gateway.reply import Reply
from modelplane.worker.protocol import hello_frame


class RelayConnection(ReplicaConnection):
    """The follower's end of a relay: requests out, responses back, like a replica."""

    def __init__(self, deployment: str, secret: str, on_lost: Callable[[RelayConnection], None]):
        super().__init__(lambda _c, _i: None, lambda _c: None)
        self.deployment = deployment
        self.replica_id = ""  # never in the gateway's replica table
        self.relay_of = deployment
        self._secret = secret
        self._relay_lost = on_lost
        self.leader_address = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        transport.write(hello_frame({"relay": self.deployment, "secret": self._secret}))  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)  # answers what was in flight with 502
        self._relay_lost(self)

    def stop(self) -> None:
        """A relay is never asked to stop like a replica; it is closed."""
        self.close()

    async def status(self, timeout: float = 2.0) -> dict[str, Any] | None:
        """The deployment's status as the leader sees it."""
        done: asyncio.Future[dict[str, Any] | None] = self._loop.create_future()

        def got(reply: Reply) -> None:
            if not done.done():
                done.set_result(orjson.loads(reply.body) if reply.status == 200 else None)

        self.send(b"", b"", got, STATUS_META)
        try:
            return await asyncio.wait_for(done, timeout)
        except TimeoutError:
            return None


async def dial(
    address: str, deployment: str, secret: str, on_lost: Callable[[RelayConnection], None]
) -> RelayConnection:
    """Connect a relay for ``deployment`` to the leader at ``tcp:host:port``."""
    kind, _, rest = address.partition(":")
    if kind != "tcp":
        raise ValueError(f"a relay needs a tcp: address, not {address!r}")
    host, _, port = rest.rpartition(":")
    loop = asyncio.get_running_loop()
    relay = RelayConnection(deployment, secret, on_lost)
    relay.leader_address = address
    try:
        await loop.create_connection(lambda: relay, host, int(port))
    except BaseException:
        with contextlib.suppress(Exception):
            relay.close()
        raise
    return relay
