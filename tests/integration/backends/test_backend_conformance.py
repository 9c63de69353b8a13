"""The runtime-backend seam, one suite for every implementation.

Each backend joins by adding a ``Rig`` to ``RIGS``: how to build it and how to know a started
replica is ready (the fake one is at once; a real one has dialled the data plane and said hello).
The fake backend runs nothing (and says so); the local backend starts real replica processes of
``examples/echo`` that dial a real replica listener over its Unix socket; the Ray backend places
them on the session's local Ray cluster (``tests/raycluster.py``, marker ``ray``), forked by warm
templates on its nodes, dialling the listener over TCP with their secret.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelplane.backends.base import ReplicaHandle, ReplicaLaunch, RuntimeBackend
from modelplane.backends.local import LocalProcessBackend
from modelplane.gateway.dataplane import DataPlane
from modelplane.gateway.replicas import ReplicaListener
from modelplane.metrics import Metrics
from modelplane.security import LOCAL_USER, authenticator
from modelplane.spec import DeploymentSpec
from modelplane.testing.backend import FakeBackend
from modelplane.worker.main import SECRET_ENV
from tests.polling import eventually
from tests.raycluster import RayCluster

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@dataclass
class Rig:
    backend: RuntimeBackend
    gateway_address: str
    ready: Callable[[ReplicaHandle], Awaitable[None]]
    dataplane: DataPlane | None = None


@pytest.fixture(
    params=[
        "fake",
        "local",
        pytest.param("ray", marks=[pytest.mark.ray, pytest.mark.slow]),
    ]
)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    if request.param == "fake":
        # Runs nothing: a replica is "ready" the moment it is started.
        async def at_once(_h: ReplicaHandle) -> None:
            return None

        yield Rig(FakeBackend(), "unix:/nonexistent", at_once)
        return
    dataplane = DataPlane(authenticator(None), Metrics())
    tcp = ("127.0.0.1", 0) if request.param == "ray" else None
    listener = ReplicaListener(
        tmp_path / "sock" / "r.sock", dataplane.on_hello, dataplane.on_lost, tcp=tcp
    )
    await listener.start()
    backend: RuntimeBackend
    address = listener.address
    if request.param == "ray":
        from modelplane.backends.ray import RayApi, RayBackend

        cluster: RayCluster = request.getfixturevalue("ray_cluster")
        api = RayApi(cluster.address)
        api.connect()
        backend = RayBackend(api, lambda *_: None)
        assert listener.tcp_address is not None
        address = listener.tcp_address
    else:
        backend = LocalProcessBackend(log=lambda *_: None)

    async def said_hello(handle: ReplicaHandle) -> None:
        await eventually(
            lambda: dataplane.load(handle.deployment).get(handle.replica_id) is not None, timeout=60
        )

    try:
        yield Rig(backend, address, said_hello, dataplane)
    finally:
        await backend.close()
        await listener.close()


def echo_spec(name: str) -> DeploymentSpec:
    # Small enough for any node of the Ray rig's cluster (2 CPUs, 3 GiB each).
    return DeploymentSpec.parse(
        {
            "name": name,
            "model": {"path": str(EXAMPLES / "echo")},
            "mode": "dedicated",
            "resources": {"cpu": 0.25, "memory": "128Mi"},
        }
    )


async def start(rig: Rig, spec: DeploymentSpec) -> ReplicaHandle:
    rid = f"{spec.name}-{secrets.token_hex(3)}"
    secret = secrets.token_urlsafe(24)
    if rig.dataplane is not None:
        rig.dataplane.add_deployment(spec.name, LOCAL_USER.user)
        rig.dataplane.expect(rid, spec.name, secret)
    await rig.backend.prepare(spec)
    launch = ReplicaLaunch(rid, spec, rig.gateway_address, env={SECRET_ENV: secret})
    return await rig.backend.start(launch)


async def test_a_started_replica_runs_until_stopped(rig: Rig) -> None:
    spec = echo_spec("conf-a")
    handle = await start(rig, spec)
    assert handle.replica_id.startswith("conf-a-") and handle.deployment == "conf-a"
    assert isinstance(handle.pid, int)
    await rig.ready(handle)
    assert not handle.exited.done()
    # A cluster backend reads a remote replica's memory in the background: asked until known.
    await eventually(lambda: rig.backend.memory_bytes(handle) is not None, timeout=10)
    memory = rig.backend.memory_bytes(handle)
    assert isinstance(memory, int) and memory > 0
    await rig.backend.stop(handle, grace=5.0)
    code = await asyncio.wait_for(handle.exited, 30)
    assert code <= 0, "stopped, not crashed"  # 0: it finished cleanly; <0: the signal
    assert rig.backend.memory_bytes(handle) is None


async def test_stopping_twice_is_harmless(rig: Rig) -> None:
    handle = await start(rig, echo_spec("conf-b"))
    await rig.ready(handle)
    await rig.backend.stop(handle, grace=2.0)
    await rig.backend.stop(handle, grace=2.0)
    assert handle.exited.done()


async def test_close_ends_every_replica(rig: Rig) -> None:
    spec = echo_spec("conf-c")
    handles = [await start(rig, spec) for _ in range(2)]
    for handle in handles:
        await rig.ready(handle)
    await rig.backend.close()
    codes = await asyncio.wait_for(asyncio.gather(*(h.exited for h in handles)), 30)
    assert len(codes) == 2 and all(h.exited.done() for h in handles)


async def test_release_after_the_last_replica_is_accepted(rig: Rig) -> None:
    spec = echo_spec("conf-d")
    handle = await start(rig, spec)
    await rig.ready(handle)
    await rig.backend.stop(handle, grace=2.0)
    await asyncio.wait_for(handle.exited, 30)
    await rig.backend.release(spec.name)
    assert rig.backend.environment(spec) is None  # on the platform's own interpreter
