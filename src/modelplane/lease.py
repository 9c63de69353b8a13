"""The leader lease, as a pure decision: who may hold it, and what a platform process does next.

Several platform processes share one PostgreSQL store; exactly one of them, the holder of the
``leader`` lease, runs the reconciler and the autoscaler. The holder renews the lease well before
it runs out; when it dies, the lease expires and the first other process to try takes it. The
store applies :func:`may_take` in one conditional UPDATE, so two processes can never both win.

Times are wall-clock (the store's rows are shared between machines); the clocks of the machines
must agree to well within ``ttl`` (NTP does). ``now`` is always passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

LEADER = "leader"


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    address: str
    """Where the holder takes replica and relay connections (``tcp:host:port``)."""
    term: int
    """Counts holders: a new holder gets ``term + 1``, a renewal keeps it."""
    expires_at: datetime


class Role(Enum):
    leader = "leader"
    follower = "follower"


@dataclass(frozen=True)
class Decision:
    role: Role
    leader: Lease | None
    """The lease as it stands (None: nobody holds it)."""
    next_try_in: float
    """Seconds until this process should try to take or renew the lease again."""
    deposed: bool = False
    """This process led until now and lost the lease: it must stop acting as leader at once."""


def may_take(lease: Lease | None, me: str, now: datetime) -> bool:
    """A process may take (or renew) a lease nobody holds, that it holds, or that ran out."""
    return lease is None or lease.holder == me or lease.expires_at <= now


def decide(
    lease: Lease | None, me: str, now: datetime, *, ttl: float, was_leader: bool
) -> Decision:
    """What ``me`` is after trying to take the lease and reading back ``lease``.

    A holder renews at a third of the ttl, so two renewals can fail before it runs out; a
    follower tries again at the same pace, so a dead leader is replaced within about
    ``ttl + ttl / 3`` seconds. A leader whose lease is within one renewal of running out
    steps down rather than risk overlapping with the next holder.
    """
    renew = ttl / 3
    holds = (
        lease is not None
        and lease.holder == me
        and lease.expires_at - now > timedelta(seconds=renew / 2)
    )
    if holds:
        return Decision(Role.leader, lease, renew)
    live = lease if lease is not None and lease.expires_at > now else None
    if live is not None and live.holder == me:
        live = None  # our own lease, about to run out: nobody should count on us
    return Decision(Role.follower, live, renew, deposed=was_leader)

