"""The loop around the leader lease: try, decide (pure, :mod:`modelplane.lease`), act.

Acting is the platform's business: ``on_lead`` starts the reconciler and autoscaler, ``on_follow``
points this process's relays at the leader, ``on_deposed`` stops a leader that lost its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from modelplane.lease import LEADER, Decision, Lease, Role, decide
from modelplane.store.leases import LeaseStore

log = logging.getLogger("modelplane.lease")


class Elector:
    def __init__(
        self,
        leases: LeaseStore,
        me: str,
        address: str,
        wall: Callable[[], datetime],
        *,
        ttl: float,
        on_lead: Callable[[], Awaitable[None]],
        on_follow: Callable[[Lease | None], None],
        on_deposed: Callable[[], Awaitable[None]],
    ) -> None:
        self.leases = leases
        self.me = me
        self.address = address
        self.wall = wall
        self.ttl = ttl
        self.on_lead = on_lead
        self.on_follow = on_follow
        self.on_deposed = on_deposed
        self.role = Role.follower
        self.leader: Lease | None = None
        self.store_ok = True
        self.eligible = True
        """False once deposed: this process then only reads who leads."""
        self._closing = False
        self._wake = asyncio.Event()

    async def step(self) -> Decision:
        """One try: take or renew the lease, decide, act. Store errors count as not holding."""
        now = self.wall()
        try:
            lease: Lease | None
            if self.eligible:
                lease = await asyncio.to_thread(
                    self.leases.try_take, LEADER, self.me, self.address, now, self.ttl
                )
            else:
                lease = await asyncio.to_thread(self.leases.current, LEADER)
            self.store_ok = True
        except Exception as exc:  # the store is unreachable: we cannot know we still lead
            log.warning("cannot reach the store to renew the leader lease: %s", exc)
            self.store_ok = False
            lease = self.leader if self.leader and self.leader.holder != self.me else None
        decision = decide(
            lease, self.me, self.wall(), ttl=self.ttl, was_leader=self.role is Role.leader
        )
        self.leader = decision.leader
        if decision.role is Role.leader and self.role is not Role.leader:
            self.role = Role.leader
            log.info("this process holds the leader lease (term %s)", decision.leader.term)  # type: ignore[union-attr]
            await self.on_lead()
        elif decision.role is Role.follower:
            if decision.deposed:
                self.role = Role.follower
                log.error("lost the leader lease; stopping the reconciler here")
                await self.on_deposed()
            self.on_follow(decision.leader)
        return decision

    async def run(self) -> None:
        while not self._closing:
            try:
                decision = await self.step()
                wait = decision.next_try_in
            except Exception:
                log.exception("leader election step failed; retrying")
                wait = self.ttl / 3
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self.role is Role.leader:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.leases.give_up, LEADER, self.me, self.wall())
