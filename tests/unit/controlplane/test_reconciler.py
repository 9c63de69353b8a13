"""The reconciler against a fake backend and a fake clock: crash loops tested in milliseconds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from modelplane.controlplane.reconciler import Reconciler
from modelplane.gateway.dataplane import DataPlane
from modelplane.logs import LogBook
from modelplane.metrics import Metrics
from modelplane.security import authenticator
from modelplane.store.db import open_store
from modelplane.testing.backend import FakeBackend
from modelplane.testing.clock import FakeClock


@pytest.fixture
async def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.ensure_user("admin", admin=True)
    backend = FakeBackend()
    clock = FakeClock()
    dataplane = DataPlane(authenticator(None), Metrics())
    rec = Reconciler(
        store,
        backend,
        dataplane,
        LogBook(tmp_path / "logs"),
        Metrics(),
        clock,
        cache_dir=tmp_path / "cache",
    )
    yield store, backend, clock, rec
    await rec.close()


def _deploy(store, name: str = "m", replicas: int = 2, memory: str = "64Mi") -> None:  # type: ignore[no-untyped-def]
    store.create_deployment(
        name,
        "admin",
        {
            "name": name,
            "model": {"path": "/m"},
            "mode": "dedicated",
            "scale": {"replicas": replicas},
            "resources": {"memory": memory},
        },
    )


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_starts_the_desired_replicas_once(world) -> None:  # type: ignore[no-untyped-def]
    store, backend, _, rec = world
    _deploy(store)
    await rec.reconcile_once()
    await rec.reconcile_once()
    assert len(backend.launches) == 2
    assert all(launch.env["MODELPLANE_CACHE_DIR"].endswith("/m") for launch in backend.launches)
    st = rec.status("m")
    assert st["starting"] == 2 and st["ready"] == 0 and st["state"] == "starting"
    rec.replica_ready(backend.launches[0].replica_id, {"load_seconds": 0.1})
    assert rec.status("m")["ready"] == 1


async def test_crash_loop_backs_off_on_the_injected_clock(world) -> None:  # type: ignore[no-untyped-def]
    store, backend, clock, rec = world
    _deploy(store, replicas=1)
    await rec.reconcile_once()
    delays = []
    for _ in range(5):
        rid = backend.launches[-1].replica_id
        backend.exit(rid, 1)
        await _settle()
        dep = rec.deployments["m"]
        delays.append(round(dep.next_start_at - clock.now(), 3))
        before = len(backend.launches)
        await rec.reconcile_once()
        if delays[-1] > 0:
            assert len(backend.launches) == before, "no restart before the backoff has passed"
            clock.advance(delays[-1])
            await rec.reconcile_once()
        assert len(backend.launches) == before + 1
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0]
    st = rec.status("m")
    assert st["restarts"] == 5 and "exited with code 1" in st["last_error"]


async def test_a_replica_that_ran_long_resets_the_backoff(world) -> None:  # type: ignore[no-untyped-def]
    store, backend, clock, rec = world
    _deploy(store, replicas=1)
    await rec.reconcile_once()
    for _ in range(3):  # three quick crashes
        backend.exit(backend.launches[-1].replica_id)
        await _settle()
        clock.advance(10)
        await rec.reconcile_once()
    rid = backend.launches[-1].replica_id
    rec.replica_ready(rid, {})
    clock.advance(60)
    backend.exit(rid)
    await _settle()
    assert rec.deployments["m"].next_start_at == clock.now()


async def test_memory_over_limit_stops_the_replica(world) -> None:  # type: ignore[no-untyped-def]
    store, backend, _, rec = world
    _deploy(store, replicas=1, memory="64Mi")
    await rec.reconcile_once()
    rid = backend.launches[0].replica_id
    backend.memory[rid] = 100 * 2**20
    await rec.reconcile_once()
    await _settle()
    assert rid in backend.stopped
    st = rec.status("m")
    assert "used 100 MiB, over its memory limit of 64 MiB" in st["last_error"]
    assert st["restarts"] == 1


async def test_scale_down_and_delete_stop_replicas(world) -> None:  # type: ignore[no-untyped-def]
    store, backend, _, rec = world
    _deploy(store, replicas=3)
    await rec.reconcile_once()
    store.update_deployment(
        "m", {"name": "m", "model": {"path": "/m"}, "mode": "dedicated", "scale": {"replicas": 1}}
    )
    await rec.reconcile_once()
    await _settle()
    assert len(backend.stopped) == 3  # a spec change replaces every replica
    await rec.reconcile_once()
    assert len(rec.deployments["m"].live()) == 1
    store.delete_deployment("m")
    await rec.reconcile_once()
    await _settle()
    assert "m" not in rec.deployments and len(backend.stopped) == 4


async def test_a_backoff_is_waited_out_with_one_wake_up_at_its_end(world) -> None:  # type: ignore[no-untyped-def]
    store, backend, clock, rec = world
    _deploy(store, replicas=1)
    await rec.reconcile_once()
    for _ in range(2):  # the second crash in a row backs off 0.5 s
        backend.exit(backend.launches[-1].replica_id, 1)
        await _settle()
        await rec.reconcile_once()
    dep = rec.deployments["m"]
    assert dep.next_start_at == clock.now() + 0.5
    assert dep.wake_at == dep.next_start_at  # asked once to be woken then
    launched = len(backend.launches)
    await rec.reconcile_once()  # a pass inside the backoff starts nothing, asks nothing new
    assert len(backend.launches) == launched and dep.wake_at == dep.next_start_at
    clock.advance(0.5)
    await rec.reconcile_once()
    assert len(backend.launches) == launched + 1
