"""Replica choice: a pure function of what the gateway knows about each ready replica."""

from __future__ import annotations

from collections.abc import Sequence
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
