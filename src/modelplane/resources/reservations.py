"""The node's reservation book: who holds which CPU, memory and GPUs, in memory.

Two kinds of entries. A *commitment* per stored deployment: what it is promised whether or not
its replicas run (a dedicated deployment's replicas, a serverless one's ``scale.min``); the
reconciler keeps these in line with the store, so the book is rebuilt at every start. A *grant*
per live replica, taken before the replica starts and given back when it exits; and one per running
DEEPaaS training, which holds what one replica of its deployment would, on top of what the
deployment is promised (a training never eats into its own deployment's replicas). Capacity that
is committed to one deployment but not held by it right now is set aside: nobody else may take it.

Decisions are the pure functions of :mod:`modelplane.resources`; this class only keeps state.
Admission (create/update) runs under ``admission`` so two racing deploys cannot both see the same
free capacity: the lock is held from the check until the reconciler has the new commitment.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from modelplane.errors import InsufficientResources, InvalidSpec, QuotaExceeded
from modelplane.resources.amounts import Usage
from modelplane.resources.inventory import Inventory
from modelplane.resources.placement import Grant, Refusal, admit, never_fits, place
from modelplane.resources.quota import Quota, over_quota
from modelplane.spec import DeploymentSpec, Mode


def per_replica(spec: DeploymentSpec) -> Usage:
    r = spec.resources
    return Usage(r.cpu, r.memory, r.gpu)


def guaranteed(spec: DeploymentSpec) -> Usage:
    """What a deployment is promised while it exists, replicas running or not."""
    n = spec.scale.replicas if spec.mode is Mode.dedicated else spec.scale.min
    return per_replica(spec).times(n)


@dataclass(frozen=True)
class _Held:
    deployment: str
    owner: str
    grant: Grant
    training: bool = False


class ReservationBook:
    def __init__(self, inventory: Inventory, quotas: dict[str, Quota] | None = None) -> None:
        self.inventory = inventory
        self.quotas: dict[str, Quota] = dict(quotas or {})
        self.admission = asyncio.Lock()
        self._grants: dict[str, _Held] = {}
        self._commitments: dict[str, tuple[str, Usage]] = {}

    # -- commitments (kept by the reconciler from the store) -----------------------------------
    def commit(self, deployment: str, owner: str, spec: DeploymentSpec) -> None:
        self._commitments[deployment] = (owner, guaranteed(spec))

    def forget(self, deployment: str) -> None:
        self._commitments.pop(deployment, None)

    # -- grants (taken and given back by the reconciler around each replica) -------------------
    def reserve(
        self, replica_id: str, deployment: str, owner: str, request: Usage
    ) -> Grant | Refusal:
        """A grant for one more replica of ``deployment``, or why it cannot start now."""
        return self._reserve(
            replica_id,
            deployment,
            owner,
            request,
            training=False,
            load=self._load(owner=owner, exclude=deployment, own=True),
            set_aside=self._unclaimed(exclude=deployment),
        )

    def reserve_training(
        self, key: str, deployment: str, owner: str, request: Usage
    ) -> Grant | Refusal:
        """A grant for a training of ``deployment``: beside its replicas, never instead of them.

        Unlike a replica's, it may not take capacity promised to its own deployment either, and
        the owner's quota counts it on top of everything the deployment holds or is promised.
        """
        return self._reserve(
            key,
            deployment,
            owner,
            request,
            training=True,
            load=self._load(owner=owner),
            set_aside=self._unclaimed(exclude=""),
        )

    def _reserve(
        self,
        key: str,
        deployment: str,
        owner: str,
        request: Usage,
        *,
        training: bool,
        load: Usage,
        set_aside: Usage,
    ) -> Grant | Refusal:
        """Quota first (``load`` is what counts against the owner's), then placement on what is
        neither granted nor ``set_aside``; a grant is booked under ``key``."""
        quota = self.quotas.get(owner)
        if quota is not None:
            short = over_quota(quota, load, request)
            if short:
                return Refusal(tuple(short), "quota")
        outcome = place(
            self.inventory,
            (h.grant for h in self._grants.values()),
            request,
            set_aside=set_aside,
        )
        if isinstance(outcome, Grant):
            self._grants[key] = _Held(deployment, owner, outcome, training=training)
        return outcome

    def restore_training(self, key: str, deployment: str, owner: str, grant: Grant) -> None:
        """Hold ``grant`` again for a training that outlived a platform restart: its process
        still runs with those devices, so the book takes them back whether or not they fit."""
        self._grants[key] = _Held(deployment, owner, grant, training=True)

    def release(self, replica_id: str) -> None:
        """Give back a replica's or a training's grant."""
        self._grants.pop(replica_id, None)

    def grant(self, replica_id: str) -> Grant | None:
        held = self._grants.get(replica_id)
        return held.grant if held else None

    # -- admission of a create or an update ---------------------------------------------------
    def admit(self, spec: DeploymentSpec, owner: str, *, creating: bool) -> None:
        """Raise unless ``spec``'s promised resources fit the node and the owner's quota.

        422 when one replica is bigger than the whole node (it could never run), 409 when the
        node is too full now, 403 when it would put the owner over their quota.
        """
        one = per_replica(spec)
        never = never_fits(self.inventory, one)
        if never is not None:
            field = f"resources.{never.shortages[0].resource}"
            raise InvalidSpec(
                f"{field}: one replica is {never.message}",
                field=field,
                **never.to_dict(),
            )
        want = guaranteed(spec)
        refused = admit(self.inventory, self._load(exclude=spec.name), want)
        if refused is not None:
            raise InsufficientResources(
                f"deployment {spec.name!r} does not fit: {refused.message}",
                hint="remove or shrink other deployments, or ask for fewer replicas or resources",
                deployment=spec.name,
                **refused.to_dict(),
            )
        quota = self.quotas.get(owner)
        if quota is None:
            return
        mine = [d for d, (o, _) in self._commitments.items() if o == owner and d != spec.name]
        short = over_quota(
            quota,
            self._load(owner=owner, exclude=spec.name),
            want.at_least(one),
            deployments=len(mine),
            new_deployments=1 if creating else 0,
        )
        if short:
            refusal = Refusal(tuple(short), "quota")
            raise QuotaExceeded(
                f"deployment {spec.name!r} would put {owner!r} {refusal.message}",
                hint="ask an admin for a larger quota, or remove or shrink your deployments",
                deployment=spec.name,
                **refusal.to_dict(),
            )

    # -- views ----------------------------------------------------------------------------------
    def _held_by(self, training: bool = False) -> dict[str, Usage]:
        """Per deployment, what its replicas hold (or, ``training``, its trainings)."""
        out: dict[str, Usage] = defaultdict(Usage)
        for h in self._grants.values():
            if h.training == training:
                out[h.deployment] = out[h.deployment] + h.grant.usage
        return out

    def _load(self, *, owner: str | None = None, exclude: str = "", own: bool = False) -> Usage:
        """What is held or promised (per deployment, the larger of the two), optionally only
        ``owner``'s; ``exclude``'s share is left out, or with ``own`` counted as held only.
        Trainings always count, on top: they fill no promise."""
        held = self._held_by()
        training = self._held_by(training=True)
        owners = {d: o for d, (o, _) in self._commitments.items()}
        owners.update({h.deployment: h.owner for h in self._grants.values()})
        total = Usage()
        for dep, dep_owner in owners.items():
            if owner is not None and dep_owner != owner:
                continue
            total = total + training.get(dep, Usage())
            if dep == exclude:
                if own:
                    total = total + held.get(dep, Usage())
                continue
            promised = self._commitments.get(dep, ("", Usage()))[1]
            total = total + held.get(dep, Usage()).at_least(promised)
        return total

    def _unclaimed(self, exclude: str) -> Usage:
        """Promised to deployments other than ``exclude`` but not held by them now."""
        held = self._held_by()
        total = Usage()
        for dep, (_, promised) in self._commitments.items():
            if dep != exclude:
                total = total + (promised - held.get(dep, Usage())).clamp()
        return total

    def usage(self, owner: str | None = None) -> Usage:
        """What ``owner``'s replicas and trainings hold now (everyone's for None)."""
        return sum(
            (h.grant.usage for h in self._grants.values() if owner is None or h.owner == owner),
            Usage(),
        )

    def view(self, owner: str | None = None) -> dict[str, Any]:
        """The inventory and the reservations ``owner`` may see (all for None)."""
        deployments: dict[str, dict[str, Any]] = {}
        for rid, h in sorted(self._grants.items()):
            if owner is not None and h.owner != owner:
                continue
            entry = deployments.setdefault(
                h.deployment, {"owner": h.owner, "replicas": {}, "trainings": {}}
            )
            holds = {**h.grant.usage.to_dict(), "gpu_devices": list(h.grant.gpus)}
            entry["trainings" if h.training else "replicas"][rid] = holds
        held = self.usage()
        return {
            "inventory": self.inventory.to_dict(),
            "reserved": held.to_dict(),
            "free": (self.inventory.total - self._load()).clamp().to_dict(),
            "deployments": deployments,
        }
