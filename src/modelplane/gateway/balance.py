"""Replica choice: a pure function of what the gateway knows about each ready replica."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar


class _Loaded(Protocol):
    @property
    def in_flight(self) -> int: ...


R = TypeVar("R", bound=_Loaded)


def least_loaded(replicas: Sequence[R]) -> R:
    """The replica with the fewest requests in flight; the earliest one on a tie.

    Preferring the earliest on ties keeps light traffic on few replicas, which lets an autoscaler
    see the others idle and release them.
    """
    best = replicas[0]
    best_load = best.in_flight
    for replica in replicas[1:]:
        load = replica.in_flight
        if load < best_load:
            best, best_load = replica, load
    return best


class _Live(Protocol):
    @property
    def ready(self) -> bool: ...


L = TypeVar("L", bound=_Live)


def scale_down_order(live: Sequence[L], in_flight: Callable[[L], int]) -> list[L]:
    """The order in which replicas are stopped when a deployment shrinks: those still starting
    first (nothing to finish), then the ready ones with the fewest requests in flight."""
    return sorted(live, key=lambda r: (r.ready, in_flight(r)))


def per_replica_limit(target_concurrency: float, *, can_grow: bool) -> int:
    """Requests in flight per replica the pool allows (0: no limit).

    While a deployment can still grow (a replica is starting, or a serverless one is below its
    maximum), each replica takes at most its target concurrency and the rest wait for the
    replicas the autoscaler is starting (Knative's activator does the same). At its maximum a
    deployment takes everything it is sent.
    """
    return math.ceil(target_concurrency) if can_grow else 0
