"""The Ray backend's view of its cluster, on a fake RayApi: no cluster started."""

from __future__ import annotations

import asyncio
import threading

import pytest

from modelplane.backends.base import ReplicaLaunch
from modelplane.backends.ray import RayBackend
from modelplane.backends.ray.placement import NodeInfo
from modelplane.errors import Unavailable
from modelplane.spec import DeploymentSpec

NODE = NodeInfo("n1", "10.0.0.1", {"CPU": 2, "memory": 4 * 2**30})


class FakeRay:
    """Answers ``nodes()`` until ``hang`` is set; then blocks like a call to a dead GCS."""

    address = "10.0.0.9:6379"

    def __init__(self) -> None:
        self.hang = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def nodes(self) -> list[NodeInfo]:
        self.calls += 1
        if self.hang.is_set():
            self.release.wait(10)
        return [NODE]


def echo() -> DeploymentSpec:
    return DeploymentSpec.parse({"name": "e", "model": {"path": "/m"}, "mode": "dedicated"})


async def test_health_says_degraded_while_ray_does_not_answer_and_ok_once_it_does() -> None:
    api = FakeRay()
    backend = RayBackend(api, lambda *_: None, probe_timeout=0.05)  # type: ignore[arg-type]
    assert await backend.nodes() == [NODE]
    assert backend.health() == {
        "backend": {"kind": "ray", "state": "ok", "detail": "1 alive Ray nodes"}
    }
    api.hang.set()
    with pytest.raises(Unavailable) as info:
        await backend.nodes()
    state = backend.health()["backend"]
    assert state["state"] == "degraded"
    assert (
        "the Ray cluster at 10.0.0.9:6379 does not answer (no answer within 0.05 s)"
        in (state["detail"])
    )
    assert info.value.message == state["detail"] and info.value.status == 503
    # A new placement is refused at once, and the hung question is not asked again meanwhile.
    with pytest.raises(Unavailable):
        await backend.start(ReplicaLaunch("e-1", echo(), "tcp:127.0.0.1:1"))
    assert api.calls == 2
    api.hang.clear()
    api.release.set()
    await asyncio.wait_for(backend._probe, 5)  # type: ignore[arg-type]
    assert await backend.nodes() == [NODE]
    assert backend.health()["backend"]["state"] == "ok"
    await backend.close()
