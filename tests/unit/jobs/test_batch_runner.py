"""A batch run's own mechanics, with a fake replica behind the real data plane, a SQLite batch
store and local folders: a follower waiting for a run learns of its end when it comes, and
nothing is lost or written twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.polling import eventually

from modelplane.gateway.dataplane import DataPlane
from modelplane.gateway.reply import OnReply, PredictRequest
from modelplane.jobs.batches import BatchRunner
from modelplane.metrics import Metrics
from modelplane.security import PLATFORM
from modelplane.storage.sides import LocalSide, Side
from modelplane.store.batches import BatchStore, NewBatch
from modelplane.store.db import open_store
from modelplane.store.models import BatchRow
from modelplane.testing.replica import FakeReplica


@dataclass
class World:
    runner: BatchRunner
    batches: BatchStore
    replica: FakeReplica
    src: Path
    dst: Path

    def start(self, n: int, **options: int) -> str:
        self.src.mkdir(exist_ok=True)
        for i in range(n):
            (self.src / f"{i:03d}.json").write_bytes(b'{"i": %d}' % i)
        row = self.batches.create(
            NewBatch("ann", "echo", f"file://{self.src}", f"file://{self.dst}", options=options)
        )
        self.runner.wake()
        return row.id

    async def held(self, n: int) -> None:
        """Until the replica holds ``n`` requests."""
        await eventually(lambda: len(self.replica.held) >= n, timeout=5, interval=0.002)

    def answer_all(self) -> int:
        k = 0
        while self.replica.held:
            sent = self.replica.answer(body=self.replica.held[0].body)
            k += 1
            assert sent.body
        return k


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    batches = BatchStore(open_store(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    dataplane = DataPlane(lambda _: None, Metrics())
    dataplane.add_deployment("echo", "ann")
    replica = FakeReplica("r1", "echo")
    dataplane.expect("r1", "echo", "s3cret")
    dataplane.on_hello(replica, {"secret": "s3cret"})  # type: ignore[arg-type]

    def submit(name: str, ctype: bytes, body: bytes, on_reply: OnReply) -> bool:
        dataplane.submit(name, PredictRequest(ctype, body, principal=PLATFORM), on_reply)
        return True

    def sides(row: BatchRow) -> tuple[Side, Side]:
        return LocalSide(Path(row.input[7:])), LocalSide(Path(row.output[7:]))

    runner = BatchRunner(batches, submit, sides, interval=0.01, checkpoint_interval=0.05)
    task = asyncio.create_task(runner.run())
    yield World(runner, batches, replica, tmp_path / "in", tmp_path / "out")
    await runner.close()
    await task


async def test_a_waiting_follower_learns_of_the_end_when_it_comes(world: World) -> None:
    run = world.start(5)
    ended = world.runner.ended(run)
    await world.held(5)
    assert not ended.done()
    world.answer_all()
    await asyncio.wait_for(ended, 5)
    row = world.batches.get(run)
    assert row is not None and row.finished_at is not None  # in the store before the news
    assert (row.state, row.done, row.total) == ("succeeded", 5, 5)
    assert sorted(p.name for p in world.dst.iterdir()) == [f"{i:03d}.json.json" for i in range(5)]
    assert world.runner._waiters == {}  # an answered follower leaves nothing behind


async def test_a_follower_that_gives_up_leaves_nothing_behind(world: World) -> None:
    run = world.start(1)
    ended = world.runner.ended(run)
    ended.cancel()
    await asyncio.sleep(0)  # the future's callbacks run on the next step of the loop
    assert world.runner._waiters == {}
    await world.held(1)
    world.answer_all()
    row = await eventually(lambda: (r := world.batches.get(run)) and r.finished_at and r)
    assert row.state == "succeeded"
