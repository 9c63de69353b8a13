"""What a platform process does while another one holds the leader lease.

It answers the REST API from the shared store like the leader does, and serves predictions
through relays to the leader (see :mod:`modelplane.gateway.relay`): it keeps one pool per stored
deployment (so authentication, 404s and the wait queue behave the same), one relay per pool, and
a copy of each deployment's status as the leader reports it, refreshed every ``interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from modelplane.gateway import relay as relays
from modelplane.gateway.dataplane import DataPlane
from modelplane.gateway.relay import RelayConnection
from modelplane.spec import DeploymentSpec
from modelplane.store import Store

log = logging.getLogger("modelplane.follower")


@dataclass
class Stored:
    spec: DeploymentSpec
    generation: int


class Follower:
    def __init__(
        self, store: Store, dataplane: DataPlane, secret: str, interval: float = 0.5
    ) -> None:
        self.store = store
        self.dataplane = dataplane
        self.secret = secret
        self.interval = interval
        self.leader_address: str | None = None
        self.relays: dict[str, RelayConnection] = {}
        self.statuses: dict[str, dict[str, Any]] = {}
        self.deployments: dict[str, Stored] = {}
        """Every stored deployment's spec (what the job runner needs to know)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self.active = False
        self._dialing: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- switched by the elector ---------------------------------------------------------------
    def follow(self, address: str | None) -> None:
        """Relay to the leader at ``address`` (None: nobody leads now; requests wait)."""
        if not self.active:
            self.active = True
            self._task = asyncio.create_task(self.run())
        if address != self.leader_address:
            self.leader_address = address
            self._drop_relays()
            self._wake.set()

    async def stop(self) -> None:
        """This process leads now (or stops): relays go, the pools stay for the reconciler."""
        self.active = False
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._drop_relays()
        self.statuses.clear()
        self.leader_address = None

    def status(self, name: str) -> dict[str, Any] | None:
        return self.statuses.get(name) if self.active else None

    # -- the loop -------------------------------------------------------------------------------
    async def run(self) -> None:
        while self.active:
            try:
                await self.step()
            except Exception:
                log.exception("follower pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()

    async def step(self) -> None:
        rows = await asyncio.to_thread(self.store.list_deployments)
        names = {row.name for row in rows}
        for row in rows:
            self.dataplane.add_deployment(row.name, row.owner)
            known = self.deployments.get(row.name)
            if known is None or known.generation != row.generation:
                spec = DeploymentSpec.model_validate(row.spec)
                self.deployments[row.name] = Stored(spec, row.generation)
        for name in [n for n in self.deployments if n not in names]:
            del self.deployments[name]
        for name in [n for n in self.dataplane.names() if n not in names]:
            self.dataplane.remove_deployment(name)
            relay = self.relays.pop(name, None)
            if relay is not None:
                relay.close()
            self.statuses.pop(name, None)
        address = self.leader_address
        if address is None:
            return
        for name in names:
            if name not in self.relays and name not in self._dialing:
                self._dialing.add(name)
                task = asyncio.create_task(self._connect(name, address))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        for name, relay in list(self.relays.items()):
            status = await relay.status()
            if status is not None:
                self.statuses[name] = status

    async def _connect(self, name: str, address: str) -> None:
        try:
            relay = await relays.dial(address, name, self.secret, self._lost)
        except OSError as exc:
            log.info("cannot reach the leader at %s yet: %s", address, exc)
            return
        finally:
            self._dialing.discard(name)
        if not self.active or address != self.leader_address or not self.dataplane.has(name):
            relay.close()
            return
        self.relays[name] = relay
        self.dataplane.add_link(name, relay)  # releases requests that waited for it

    def _lost(self, relay: RelayConnection) -> None:
        if self.relays.get(relay.relay_of) is relay:
            del self.relays[relay.relay_of]
        self.dataplane.remove_link(relay.relay_of, relay)
        if self.active:
            self._wake.set()

    def _drop_relays(self) -> None:
        for relay in list(self.relays.values()):
            relay.close()
        for relay in self.relays.values():
            self.dataplane.remove_link(relay.relay_of, relay)
        self.relays.clear()


class _Reconciler(Protocol):
    @property
    def deployments(self) -> dict[str, Any]: ...


class LeadOrFollow:
    """The deployments the job runner works for: the reconciler's while this process leads,
    else the follower's copy of the store."""

    def __init__(self, reconciler: _Reconciler, follower: Callable[[], Follower | None]) -> None:
        self._reconciler = reconciler
        self._follower = follower

    @property
    def deployments(self) -> dict[str, Any]:
        follower = self._follower()
        if follower is not None and follower.active:
            return follower.deployments
        return self._reconciler.deployments
