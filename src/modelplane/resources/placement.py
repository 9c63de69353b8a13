"""Where a replica fits: pure functions of the inventory, what is held, and the request.

A grant names concrete GPU devices (never one already given out); a refusal lists every resource
that is short and by how much, so a status or an error message can say it in one line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from modelplane.resources.amounts import Shortage, Usage, shortages
from modelplane.resources.inventory import Inventory


@dataclass(frozen=True)
class Grant:
    """What a replica holds: its CPU and memory, and the GPU devices it may use."""

    cpu: float
    memory: int
    gpus: tuple[int, ...] = ()

    @property
    def usage(self) -> Usage:
        return Usage(self.cpu, self.memory, len(self.gpus))

    def env(self, inventory: Inventory) -> dict[str, str]:
        """``CUDA_VISIBLE_DEVICES`` for the replica: its own devices, or none at all. Left unset
        on a node without GPUs, so nothing changes where nothing is to be shared."""
        if not inventory.gpus:
            return {}
        return {"CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in self.gpus)}


@dataclass(frozen=True)
class Refusal:
    shortages: tuple[Shortage, ...]
    reason: str = "node"  # node: the node is full now; never: bigger than the node; quota

    @property
    def message(self) -> str:
        of = "left in the quota" if self.reason == "quota" else "free"
        what = {
            "node": "not enough free resources on the node",
            "never": "bigger than the whole node",
            "quota": "over the owner's quota",
        }[self.reason]
        return f"{what}: " + "; ".join(s.describe(of) for s in self.shortages)

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "shortages": [s.to_dict() for s in self.shortages]}


def never_fits(inventory: Inventory, request: Usage) -> Refusal | None:
    """A refusal if one replica of ``request`` exceeds the whole node, even when it is empty."""
    total = inventory.total
    short = shortages(request, total, total)
    return Refusal(tuple(short), "never") if short else None


def admit(inventory: Inventory, blocked: Usage, request: Usage) -> Refusal | None:
    """Whether ``request`` (possibly several replicas' worth) fits beside ``blocked``."""
    if (never := never_fits(inventory, request)) is not None:
        return never
    total = inventory.total
    short = shortages(request, (total - blocked).clamp(), total)
    return Refusal(tuple(short)) if short else None


def place(
    inventory: Inventory,
    held: Iterable[Grant],
    request: Usage,
    *,
    set_aside: Usage | None = None,
) -> Grant | Refusal:
    """A grant for one replica of ``request``, or what is short.

    ``held`` are the grants of running replicas; ``set_aside`` is capacity promised to others
    (dedicated replicas not running right now) that this replica may not take.
    """
    held = list(held)
    used = sum((g.usage for g in held), Usage())
    refused = admit(inventory, used + (set_aside or Usage()), request)
    if refused is not None:
        return refused
    taken = {i for g in held for i in g.gpus}
    free = [g.index for g in inventory.gpus if g.index not in taken]
    return Grant(request.cpu, request.memory, tuple(sorted(free)[: request.gpu]))
