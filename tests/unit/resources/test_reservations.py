"""Reservations through the reconciler, on a fake backend and a declared 2-GPU inventory."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from modelplane.controlplane.reconciler import Reconciler
from modelplane.errors import InsufficientResources, InvalidSpec, QuotaExceeded
from modelplane.gateway.dataplane import DataPlane
from modelplane.logs import LogBook
from modelplane.metrics import Metrics
from modelplane.resources.inventory import Gpu, Inventory
from modelplane.resources.quota import Quota
from modelplane.resources.reservations import ReservationBook
from modelplane.security import authenticator
from modelplane.spec import DeploymentSpec
from modelplane.store.db import Store, open_store
from modelplane.testing.backend import FakeBackend
from modelplane.testing.clock import FakeClock

GiB = 2**30
NODE = Inventory(cpu=4.0, memory=8 * GiB, gpus=(Gpu(0), Gpu(1)), source="declared")


def _spec(name: str, **kw: Any) -> DeploymentSpec:
    body: dict[str, Any] = {"name": name, "model": {"path": "/m"}, "mode": "dedicated"}
    body.update(kw)
    return DeploymentSpec.parse(body)


@pytest.fixture
async def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.ensure_user("ann")
    store.ensure_user("bob")
    backend = FakeBackend()
    dataplane = DataPlane(authenticator(None), Metrics())
    rec = Reconciler(
        store,
        backend,
        dataplane,
        LogBook(tmp_path / "logs"),
        Metrics(),
        FakeClock(),
        cache_dir=tmp_path / "cache",
    )
    rec.reservations = ReservationBook(NODE, {"bob": Quota(cpu=1, deployments=1)})
    yield store, backend, rec
    await rec.close()


def _deploy(store: Store, spec: DeploymentSpec, owner: str = "ann") -> None:
    store.create_deployment(spec.name, owner, spec.model_dump(mode="json"))


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_each_gpu_replica_gets_its_own_device_and_a_third_waits(world) -> None:  # type: ignore[no-untyped-def]
    store, backend, rec = world
    _deploy(store, _spec("gpu", scale={"replicas": 3}, resources={"gpu": 1, "cpu": 0.5}))
    await rec.reconcile_once()
    devices = sorted(launch.env["CUDA_VISIBLE_DEVICES"] for launch in backend.launches)
    assert devices == ["0", "1"]
    st = rec.status("gpu")
    assert st["state"] == "pending" and st["starting"] == 2
    assert st["pending"] == (
        "replica not started: not enough free resources on the node: gpu: needs 1 GPU, "
        "0 GPUs free of 2 GPUs (short by 1 GPU)"
    )
    # a replica exits: its device is free again and the waiting replica takes it
    gone = backend.launches[0]
    backend.exit(gone.replica_id, 1)
    await _settle()
    await rec.reconcile_once()
    assert backend.launches[-1].env["CUDA_VISIBLE_DEVICES"] == gone.env["CUDA_VISIBLE_DEVICES"]
    assert rec.reservations.usage().gpu == 2


async def test_cpu_only_replicas_see_no_gpu(world) -> None:  # type: ignore[no-untyped-def]
    store, backend, rec = world
    _deploy(store, _spec("cpu"))
    await rec.reconcile_once()
    assert backend.launches[0].env["CUDA_VISIBLE_DEVICES"] == ""


async def test_removing_a_deployment_releases_its_reservation(world) -> None:  # type: ignore[no-untyped-def]
    store, _backend, rec = world
    _deploy(store, _spec("gpu", scale={"replicas": 2}, resources={"gpu": 1}))
    await rec.reconcile_once()
    assert rec.reservations.usage().gpu == 2
    store.delete_deployment("gpu")
    await rec.reconcile_once()
    await _settle()
    assert rec.reservations.usage().gpu == 0
    rec.reservations.admit(_spec("next", resources={"gpu": 2}), "ann", creating=True)


async def test_admission_counts_what_dedicated_deployments_are_promised(world) -> None:  # type: ignore[no-untyped-def]
    store, _, rec = world
    book = rec.reservations
    _deploy(store, _spec("a", scale={"replicas": 1}, resources={"gpu": 1}))
    await rec.sync()  # promised, not started yet: still not free for others
    book.admit(_spec("b", resources={"gpu": 1}), "ann", creating=True)
    with pytest.raises(InsufficientResources) as caught:
        book.admit(_spec("b", scale={"replicas": 2}, resources={"gpu": 1}), "ann", creating=True)
    assert caught.value.status == 409
    assert "gpu: needs 2 GPUs, 1 GPU free of 2 GPUs (short by 1 GPU)" in caught.value.message
    # an update is measured without its own current share
    book.admit(_spec("a", scale={"replicas": 2}, resources={"gpu": 1}), "ann", creating=False)


async def test_bigger_than_the_node_is_422_naming_the_field(world) -> None:  # type: ignore[no-untyped-def]
    _, _, rec = world
    with pytest.raises(InvalidSpec) as caught:
        rec.reservations.admit(_spec("big", resources={"gpu": 3}), "ann", creating=True)
    assert caught.value.fields["field"] == "resources.gpu"
    assert "short by 1 GPU" in caught.value.message


async def test_quota_at_admission_and_at_scale_up(world) -> None:  # type: ignore[no-untyped-def]
    store, _backend, rec = world
    book = rec.reservations
    with pytest.raises(QuotaExceeded) as caught:
        book.admit(_spec("b1", scale={"replicas": 2}, resources={"cpu": 1}), "bob", creating=True)
    assert caught.value.status == 403
    assert "cpu: needs 2 cores, 1 core left in the quota of 1 core (short by 1 core)" in (
        caught.value.message
    )
    serverless = _spec("b1", mode="serverless", scale={"min": 0, "max": 3})
    book.admit(serverless, "bob", creating=True)
    _deploy(store, serverless, owner="bob")
    await rec.sync()
    with pytest.raises(QuotaExceeded, match="deployments: needs 1"):
        book.admit(_spec("b2", resources={"cpu": 0.1}), "bob", creating=True)
    # at run time: the first replica fits the quota, the second waits with the reason
    assert book.reserve("r1", "b1", "bob", book_request(serverless)) is not None
    refused = book.reserve("r2", "b1", "bob", book_request(serverless))
    assert "over the owner's quota" in refused.message  # type: ignore[union-attr]


def book_request(spec: DeploymentSpec):  # type: ignore[no-untyped-def]
    from modelplane.resources.reservations import per_replica

    return per_replica(spec)
