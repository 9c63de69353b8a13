"""A deployment's status, as ``modelplane status``, the REST API and the dashboard show it.

Pure: the reconciler gathers what it knows (its records, the data plane's counts, the backend's
memory readings and environment) and :func:`deployment_status` shapes it; :func:`state_of` is
the one place the headline state is derived.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelplane.controlplane.runtime import DeploymentRuntime


def state_of(
    *,
    want: int,
    ready: int,
    starting: int,
    environment: Mapping[str, Any] | None,
    pending: str | None,
    failures: int,
) -> str:
    """building | failing | running | idle | pending | starting.

    The environment speaks first while nothing is ready (its build is what everyone waits for);
    then enough ready replicas is ``running``, none wanted is ``idle``; a replica that found no
    room is ``pending``; a crash loop with nothing ready is ``failing``.
    """
    env = environment["state"] if environment is not None else None
    if env == "building" and not ready:
        return "building"
    if env == "failed" and not ready:
        return "failing"
    if ready >= want and want > 0:
        return "running"
    if want == 0:
        return "idle"
    if pending and ready + starting < want:
        return "pending"
    if failures and not ready:
        return "failing"
    return "starting"


def unknown_status() -> dict[str, Any]:
    """The status of a deployment the reconciler has not picked up (yet)."""
    return {
        "desired": 0,
        "ready": 0,
        "starting": 0,
        "replicas": [],
        "restarts": 0,
        "state": "pending",
    }


def deployment_status(
    dep: DeploymentRuntime,
    *,
    want: int,
    environment: dict[str, Any] | None,
    served: Mapping[str, tuple[int, int]],
    memory: Mapping[str, int | None],
    requests: int,
    queued: int,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The status document of one deployment.

    ``served``: ``replica id -> (requests served, in flight)`` for its ready replicas;
    ``memory``: resident bytes by replica id; ``extra``: what the autoscaler adds.
    """
    replicas = []
    for r in dep.replicas.values():
        handle = r.handle
        count, in_flight = served.get(r.id, (0, 0))
        replicas.append(
            {
                "id": r.id,
                "state": r.state,
                "pid": handle.pid if handle else None,
                "node": handle.node if handle else None,
                "node_id": handle.node_id if handle else None,
                "started_at": r.started_wall.isoformat(),
                "load_seconds": r.load_seconds,
                "memory_bytes": memory.get(r.id),
                "served": count,
                "in_flight": in_flight,
            }
        )
    ready, starting = dep.count("ready"), dep.count("starting")
    state = state_of(
        want=want,
        ready=ready,
        starting=starting,
        environment=environment,
        pending=dep.pending,
        failures=dep.failures,
    )
    return {
        **(extra or {}),
        "state": state,
        "desired": want,
        "ready": ready,
        "starting": starting,
        "replicas": replicas,
        "restarts": dep.restarts,
        "requests": requests,
        "queued": queued,
        "last_error": dep.last_error,
        "last_error_at": dep.last_error_at.isoformat() if dep.last_error_at else None,
        "model": dep.metadata,
        "cold_starts": dep.cold_starts,
        "pending": dep.pending,
        "environment": environment,
    }
