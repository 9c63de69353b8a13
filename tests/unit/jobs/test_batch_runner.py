"""A batch run's own mechanics, with a fake replica behind the real data plane, a SQLite batch
store and local folders: a follower waiting for a run learns of its end when it comes, and
nothing is lost or written twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
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
    writes: list[int]
    """How many results each write of the output side carried."""

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

    writes: list[int] = []

    class Output(LocalSide):
        def write_many(self, results: Iterable[tuple[str, bytes, str]]) -> None:
            results = list(results)
            writes.append(len(results))
            super().write_many(results)

    def sides(row: BatchRow) -> tuple[Side, Side]:
        return LocalSide(Path(row.input[7:])), Output(Path(row.output[7:]))

    runner = BatchRunner(batches, submit, sides, interval=0.01, checkpoint_interval=0.05)
    task = asyncio.create_task(runner.run())
    yield World(runner, batches, replica, tmp_path / "in", tmp_path / "out", writes)
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


async def test_answers_that_come_one_at_a_time_are_written_together(world: World) -> None:
    """A slow model answers one input at a time; its results wait (``linger``) to be written
    with others instead of a thread hop each, and every one is written once."""
    world.runner.linger = 30.0  # longer than the test: only the run's end writes them
    run = world.start(10)
    await world.held(10)
    for _ in range(10):
        world.replica.answer(body=world.replica.held[0].body)
        await asyncio.sleep(0)  # the loop runs between answers, as with a real replica
    row = await eventually(lambda: (r := world.batches.get(run)) and r.finished_at and r)
    assert (row.state, row.done) == ("succeeded", 10)
    assert world.writes == [10]
    assert sorted(p.name for p in world.dst.iterdir()) == [f"{i:03d}.json.json" for i in range(10)]


async def test_a_full_group_is_written_without_waiting(world: World) -> None:
    world.runner.linger, world.runner.group = 30.0, 4
    run = world.start(4, concurrency=8)
    await world.held(4)
    world.answer_all()
    await eventually(lambda: world.writes == [4], timeout=5, interval=0.002)
    row = await eventually(lambda: (r := world.batches.get(run)) and r.finished_at and r)
    assert (row.state, row.done) == ("succeeded", 4)


async def test_the_fan_out_is_refilled_a_quarter_at_a_time(world: World) -> None:
    """At 8 in flight, answers free room one by one, but inputs go out two at a time once a
    quarter of the fan-out is free: one wake-up and one write to the replica per two."""
    run = world.start(20, concurrency=8)
    await world.held(8)
    world.replica.answer(body=world.replica.held[0].body)
    for _ in range(50):  # steps of the loop in which a refill, which must not come yet, could
        await asyncio.sleep(0)
    assert (len(world.replica.sent), len(world.replica.held)) == (8, 7)
    world.replica.answer(body=world.replica.held[0].body)
    await eventually(lambda: len(world.replica.sent) == 10, timeout=5, interval=0.002)
    assert len(world.replica.held) == 8
    while (row := world.batches.get(run)) is None or row.finished_at is None:
        world.answer_all()
        await asyncio.sleep(0.002)
    assert (row.state, row.done, len(world.replica.sent)) == ("succeeded", 20, 20)
