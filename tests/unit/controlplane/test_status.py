"""The status derivation: the headline state over its cases, and the document's fields."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from modelplane.backends.base import ReplicaHandle
from modelplane.controlplane.runtime import DeploymentRuntime, Replica
from modelplane.controlplane.status import deployment_status, state_of, unknown_status
from modelplane.spec import DeploymentSpec

AT = datetime(2026, 12, 2, 17, 0, tzinfo=UTC)


def _state(**kw: Any) -> str:
    args: dict[str, Any] = {
        "want": 1,
        "ready": 0,
        "starting": 0,
        "environment": None,
        "pending": None,
        "failures": 0,
    }
    return state_of(**{**args, **kw})


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ({"ready": 1}, "running"),
        ({"want": 2, "ready": 3}, "running"),
        ({"want": 0}, "idle"),
        ({"want": 0, "ready": 1}, "idle"),  # scaling down to zero
        ({"starting": 1}, "starting"),
        ({"want": 2, "ready": 1, "starting": 1}, "starting"),
        ({"pending": "replica not started: node full"}, "pending"),
        # a pending reason no longer matters once enough replicas run or start
        ({"want": 1, "starting": 1, "pending": "replica not started: node full"}, "starting"),
        ({"failures": 2}, "failing"),
        ({"failures": 2, "starting": 1}, "failing"),
        ({"want": 2, "ready": 1, "failures": 2}, "starting"),  # one ready: not failing
        ({"environment": {"state": "building"}}, "building"),
        ({"environment": {"state": "building"}, "want": 0}, "building"),
        ({"environment": {"state": "failed"}}, "failing"),
        ({"environment": {"state": "failed"}, "ready": 1}, "running"),  # an older replica runs
        ({"environment": {"state": "ready"}, "starting": 1}, "starting"),
    ],
)
def test_state_of(case: dict[str, Any], expected: str) -> None:
    assert _state(**case) == expected


def test_an_unknown_deployment_is_pending_with_nothing() -> None:
    assert unknown_status() == {
        "desired": 0,
        "ready": 0,
        "starting": 0,
        "replicas": [],
        "restarts": 0,
        "state": "pending",
    }


async def test_the_document_joins_records_counts_and_memory() -> None:
    spec = DeploymentSpec.parse({"name": "m", "model": {"path": "/m"}, "mode": "dedicated"})
    dep = DeploymentRuntime("m", "ann", spec, 1)
    exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    up = Replica("m-1", 10.0, AT, ReplicaHandle("m-1", "m", 4242, exited, node="n1"), "ready")
    up.load_seconds = 0.25
    dep.replicas = {"m-1": up, "m-2": Replica("m-2", 11.0, AT)}
    dep.failed("replica m-0 exited with code 1", AT)
    st = deployment_status(
        dep,
        want=2,
        environment=None,
        served={"m-1": (7, 2)},
        memory={"m-1": 50 * 2**20, "m-2": None},
        requests=9,
        queued=3,
        extra={"autoscaler": {"desired": 2}},
    )
    assert st["state"] == "starting" and (st["desired"], st["ready"], st["starting"]) == (2, 1, 1)
    assert st["replicas"] == [
        {
            "id": "m-1",
            "state": "ready",
            "pid": 4242,
            "node": "n1",
            "node_id": None,
            "started_at": AT.isoformat(),
            "load_seconds": 0.25,
            "memory_bytes": 50 * 2**20,
            "served": 7,
            "in_flight": 2,
        },
        {
            "id": "m-2",
            "state": "starting",
            "pid": None,
            "node": None,
            "node_id": None,
            "started_at": AT.isoformat(),
            "load_seconds": None,
            "memory_bytes": None,
            "served": 0,
            "in_flight": 0,
        },
    ]
    assert (st["requests"], st["queued"], st["restarts"]) == (9, 3, 0)
    assert st["last_error"] == "replica m-0 exited with code 1"
    assert st["last_error_at"] == AT.isoformat()
    assert st["autoscaler"] == {"desired": 2}
    assert st["pending"] is None and st["environment"] is None and st["cold_starts"] == []
