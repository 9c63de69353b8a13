"""OSCAR's ``/system/status``: the platform's one node, its services and buckets, in OSCAR's shape.

OSCAR reports its Kubernetes nodes, the OSCAR deployment and MinIO. modelplane is one machine
(one "node", named after the host), whose reservable CPU, memory and GPUs come from the
platform's inventory and whose free amounts are what replicas have not reserved; the OSCAR
"deployment" is the platform process itself; ``minio`` counts the buckets and objects the caller
may use. Whole cores and bytes, as OSCAR's integers are.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from modelplane.core.deps import Deps
from modelplane.oscar.buckets import Buckets
from modelplane.resources.amounts import Usage
from modelplane.security import Principal
from modelplane.store.jobs import FAILED, QUEUED, RUNNING, SUCCEEDED

_PHASES = {QUEUED: "Pending", RUNNING: "Running", SUCCEEDED: "Succeeded", FAILED: "Failed"}


def node_view(name: str, total: Usage, held: Usage) -> dict[str, Any]:
    """One node in OSCAR's shape from what it has and what is held (pure)."""
    free = Usage(max(0.0, total.cpu - held.cpu), max(0, total.memory - held.memory))
    return {
        "name": name,
        "cpu": {"capacity_cores": int(total.cpu), "usage_cores": int(held.cpu + 0.999)},
        "memory": {"capacity_bytes": total.memory, "usage_bytes": held.memory},
        "gpu": total.gpu,
        "is_interlink": False,
        "status": "Ready",
        "conditions": [{"type": "Ready", "status": True}],
        "_free": free,
    }


async def cluster_status(deps: Deps, caller: Principal) -> dict[str, Any]:
    book = deps.reconciler.reservations
    total = book.inventory.total if book is not None else Usage()
    held = book.usage() if book is not None else Usage()
    node = node_view(socket.gethostname(), total, held)
    free: Usage = node.pop("_free")
    counts: dict[str, dict[str, int]] = {}
    if deps.jobs is not None:
        counts = await asyncio.to_thread(deps.jobs.counts)
    states: dict[str, int] = {}
    for per_state in counts.values():
        for state, n in per_state.items():
            phase = _PHASES.get(state, state)
            states[phase] = states.get(phase, 0) + n
    buckets: list[dict[str, Any]] = []
    objects = 0
    if deps.jobs is not None and deps.storage is not None:
        buckets = await Buckets(deps).list(caller)
        for b in buckets:
            objects += len(
                await asyncio.to_thread(deps.storage.list, b["bucket_name"], "", None, 1000)
            )
    replicas = deps.dataplane.ready_total()
    return {
        "cluster": {
            "nodes_count": 1,
            "metrics": {
                "cpu": {
                    "total_free_cores": int(free.cpu),
                    "max_free_on_node_cores": int(free.cpu),
                    "total_schedulable_cores": int(total.cpu),
                    "total_schedulable_on_node_cores": int(total.cpu),
                },
                "memory": {
                    "total_free_bytes": free.memory,
                    "max_free_on_node_bytes": free.memory,
                    "total_schedulable_bytes": total.memory,
                    "max_schedulable_on_node_bytes": total.memory,
                },
                "gpu": {"total_gpu": total.gpu},
            },
            "nodes": [node],
        },
        "oscar": {
            "deployment_name": "modelplane",
            "ready": True,
            "deployment": {
                "available_replicas": 1,
                "ready_replicas": 1,
                "replicas": 1,
                "creation_timestamp": None,
                "strategy": "",
                "labels": {},
            },
            "jobs_count": sum(states.values()),
            "pods": {"total": replicas, "states": {"Running": replicas} if replicas else {}},
            "oidc": {"enabled": False, "issuers": [], "groups": []},
        },
        "minio": {"buckets_count": len(buckets), "total_objects": objects},
    }
