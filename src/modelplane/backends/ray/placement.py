"""What a replica asks of a Ray cluster, and whether any node could ever give it (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelplane.spec import DeploymentSpec


@dataclass(frozen=True)
class NodeInfo:
    """One alive node as the cluster reports it: its declared totals."""

    node_id: str
    address: str
    resources: dict[str, float]


def actor_options(spec: DeploymentSpec) -> dict[str, Any]:
    """Ray actor options for one replica of ``spec`` (its scheduling strategy is the backend's:
    a soft affinity to the ``spread_target`` node, so Ray still picks a node with room free)."""
    r = spec.resources
    options: dict[str, Any] = {"num_cpus": r.cpu, "num_gpus": r.gpu, "memory": r.memory}
    if r.custom:
        options["resources"] = dict(r.custom)
    return options


def request_of(spec: DeploymentSpec) -> dict[str, float]:
    """The replica's request in the names Ray gives node resources."""
    r = spec.resources
    want = {"CPU": r.cpu, "memory": float(r.memory), **r.custom}
    if r.gpu:
        want["GPU"] = float(r.gpu)
    return want


def never_fits(spec: DeploymentSpec, nodes: list[NodeInfo]) -> str | None:
    """Why no alive node could hold one replica even when idle, or None if one could."""
    want = request_of(spec)
    if not nodes:
        return "the Ray cluster has no alive node"
    for node in nodes:
        if all(node.resources.get(k, 0.0) >= v for k, v in want.items()):
            return None
    short = []
    for key, amount in want.items():
        best = max(node.resources.get(key, 0.0) for node in nodes)
        if best < amount:
            short.append(f"{_show(key, amount)} (the most any node has: {_show(key, best)})")
    if short:
        return "no node of the Ray cluster has " + "; ".join(short)
    every = ", ".join(_show(k, v) for k, v in want.items())
    return f"no single node of the Ray cluster has all of {every} (each is on some node)"


def _show(key: str, amount: float) -> str:
    if key == "memory":
        return f"{amount / 2**20:.0f} MiB of memory"
    if key in ("CPU", "GPU"):
        return f"{amount:g} {key}{'s' if amount != 1 else ''}"
    return f"{amount:g} of {key!r}"


def fits(spec: DeploymentSpec, node: NodeInfo) -> bool:
    """Could ``node`` hold one replica of ``spec`` when idle (its declared totals)?"""
    return all(node.resources.get(k, 0.0) >= v for k, v in request_of(spec).items())


def claim_bundle(spec: DeploymentSpec) -> dict[str, float]:
    """The placement-group bundle that claims one replica's resources (no GPUs: a GPU replica
    is an actor, so that Ray hands it its devices)."""
    r = spec.resources
    bundle = {"CPU": r.cpu, "memory": float(r.memory), **r.custom}
    return {k: v for k, v in bundle.items() if v}


def spread_target(
    spec: DeploymentSpec, nodes: list[NodeInfo], warm: set[str], running: dict[str, int]
) -> str | None:
    """The node to ask Ray for first: among those that could hold a replica of ``spec``, the one
    running fewest replicas of it (ties: a node with a warm template of it, then node id); None
    if none could. Replicas of a deployment thus go to different nodes where they can, so losing
    a node loses a share of them, not all; a node whose template is still starting (or was lost)
    is not skipped for it. Only a hint: Ray places elsewhere when that node has no room free."""
    candidates = [n.node_id for n in nodes if fits(spec, n)]
    if not candidates:
        return None
    return min(candidates, key=lambda n: (running.get(n, 0), n not in warm, n))
