"""The autoscale loop end to end without a process: the data plane as collector, the policy as
decider, the reconciler as actuator, a fake backend and a fake clock. Ten idle minutes pass in
a microsecond."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelplane.autoscale.loop import Autoscaler
from modelplane.controlplane.reconciler import Reconciler
from modelplane.gateway.dataplane import DataPlane
from modelplane.gateway.reply import PredictRequest, Reply
from modelplane.logs import LogBook
from modelplane.metrics import Metrics
from modelplane.security import PLATFORM, authenticator
from modelplane.spec import DeploymentSpec
from modelplane.store.db import Store, open_store
from modelplane.testing.backend import FakeBackend
from modelplane.testing.clock import FakeClock
from modelplane.testing.replica import FakeReplica, echo
from modelplane.worker.main import SECRET_ENV

IDLE = 600.0  # ten minutes


@dataclass
class World:
    store: Store
    backend: FakeBackend
    clock: FakeClock
    dataplane: DataPlane
    reconciler: Reconciler
    autoscaler: Autoscaler

    @property
    def spec(self) -> DeploymentSpec:
        return self.reconciler.deployments["m"].spec

    def tick(self) -> int:
        return self.autoscaler.tick(self.spec, self.clock.now())

    def connect_started(self) -> None:
        """Every launched replica loads and says hello, as a worker would."""
        for launch in self.backend.launches:
            rid = launch.replica_id
            if rid not in self.reconciler.deployments["m"].replicas:
                continue
            replica = FakeReplica(rid, "m", auto=echo)
            self.dataplane.on_hello(replica, {"secret": launch.env[SECRET_ENV]})  # type: ignore[arg-type]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.ensure_user("admin", admin=True)
    clock = FakeClock()
    backend = FakeBackend()
    metrics = Metrics()
    dataplane = DataPlane(authenticator(None), metrics, clock=clock)
    holder: list[Autoscaler] = []
    reconciler = Reconciler(
        store,
        backend,
        dataplane,
        LogBook(tmp_path / "logs"),
        metrics,
        clock,
        cache_dir=tmp_path / "cache",
        desired=lambda dep, now: holder[0].desired(dep.spec, now),
    )
    autoscaler = Autoscaler(dataplane, reconciler, clock)
    holder.append(autoscaler)
    dataplane.on_demand = autoscaler.poke
    reconciler.extra_status = autoscaler.status
    store.create_deployment(
        "m",
        "admin",
        {
            "name": "m",
            "model": {"path": "/m"},
            "mode": "serverless",
            "scale": {"min": 0, "max": 2, "target_concurrency": 1, "idle_timeout": IDLE},
        },
    )
    await reconciler.reconcile_once()
    yield World(store, backend, clock, dataplane, reconciler, autoscaler)
    autoscaler.close()
    await reconciler.close()


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def _ask(w: World) -> list[Reply]:
    got: list[Reply] = []
    w.dataplane.submit(
        "m", PredictRequest(b"application/json", b"[1]", principal=PLATFORM), got.append
    )
    return got


async def test_a_request_at_zero_starts_a_replica_and_is_answered_once_it_is_ready(
    world: World,
) -> None:
    w = world
    assert w.tick() == 0 and w.backend.launches == []
    replies = _ask(w)  # waits in the queue and pokes the autoscaler
    await _settle()
    assert len(w.backend.launches) == 1 and replies == []
    w.connect_started()
    assert [r.status for r in replies] == [200]
    st = w.reconciler.status("m")
    assert st["ready"] == 1 and st["state"] == "running"
    assert len(st["cold_starts"]) == 1


async def test_scale_to_zero_exactly_after_the_idle_timeout_on_the_fake_clock(
    world: World,
) -> None:
    w = world
    _ask(w)
    await _settle()
    w.connect_started()
    assert w.tick() == 1  # this tick sees the answered request: the idle period starts now
    idle_from = w.clock.now()
    # a quiet stretch just short of ten minutes: the replica stays
    for step in (1.0, 60.0, 300.0, IDLE - 361.0 - 0.001):
        w.clock.advance(step)
        assert w.tick() == 1
        await _settle()
        assert w.reconciler.live_replicas("m") == 1 and w.backend.stopped == []
    assert w.clock.now() == pytest.approx(idle_from + IDLE - 0.001)
    w.clock.advance(0.001)
    assert w.tick() == 0
    await _settle()
    assert len(w.backend.stopped) == 1 and w.reconciler.live_replicas("m") == 0
    st = w.reconciler.status("m")
    assert st["state"] == "idle" and st["desired"] == 0
    assert st["autoscaler"]["reason"] == "idle for 600 s: scale to zero"


async def test_a_request_during_the_idle_period_starts_it_again(world: World) -> None:
    w = world
    _ask(w)
    await _settle()
    w.connect_started()
    w.tick()
    w.clock.advance(IDLE - 1.0)
    assert [r.status for r in _ask(w)] == [200]  # served at once by the replica still up
    assert w.tick() == 1
    w.clock.advance(IDLE - 1.0)  # 2 x IDLE - 2 s after the first request, IDLE - 1 s after this
    assert w.tick() == 1 and w.backend.stopped == []
    w.clock.advance(1.0)
    assert w.tick() == 0
