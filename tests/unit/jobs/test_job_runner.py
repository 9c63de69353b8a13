"""The job runner's decisions, with a fake replica behind the real data plane, a SQLite job store
on a fake clock and local buckets: a result is written under its derived key; an input's own
fault fails the job at once; a replica's failure sends it back after the backoff (or the error's
Retry-After, if longer), and it succeeds once the clock has moved on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tests.polling import eventually

from modelplane.errors import InsufficientStorage, InvalidInput, ReplicaFailed, Unavailable
from modelplane.gateway.dataplane import DataPlane
from modelplane.gateway.reply import Reply
from modelplane.jobs.runner import JobRunner
from modelplane.metrics import Metrics
from modelplane.spec import DeploymentSpec
from modelplane.storage import LocalBucketStore
from modelplane.store.db import open_store
from modelplane.store.jobs import JobStore, NewJob
from modelplane.store.models import JobRow
from modelplane.testing.clock import FakeClock
from modelplane.testing.replica import FakeReplica, Sent, echo
from modelplane.worker.reply import error_body


@dataclass
class World:
    runner: JobRunner
    jobs: JobStore
    storage: LocalBucketStore
    replica: FakeReplica
    clock: FakeClock

    def enqueue(self, key: str, body: bytes = b'{"x": 1}') -> str:
        self.storage.put("echo-in", key, body, "application/json")
        new = NewJob("echo", "ann", "echo-in", key, "etag-" + key, "application/json", "echo-out")
        row, _ = self.jobs.enqueue(new)
        self.runner.wake("echo")
        return row.id

    async def settled(self, job_id: str, *states: str, attempts: int = 1) -> JobRow:
        """The job once it is in one of ``states`` after at least ``attempts`` tries."""

        async def done() -> JobRow | None:
            row = self.jobs.get(job_id)
            if row is None or row.state not in states or row.attempts < attempts:
                return None
            return row

        return await eventually(done, timeout=5, interval=0.005, what=f"job in {states}")

    def at(self) -> datetime:
        return datetime.fromtimestamp(self.clock.wall(), UTC)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = FakeClock()
    jobs = JobStore(open_store(f"sqlite:///{tmp_path / 'db.sqlite'}"), clock)
    storage = LocalBucketStore(tmp_path / "buckets")
    for bucket in ("echo-in", "echo-out"):
        storage.create_bucket(bucket)
    dataplane = DataPlane(lambda _: None, Metrics())
    dataplane.add_deployment("echo", "ann")
    replica = FakeReplica("r1", "echo", auto=echo)
    dataplane.expect("r1", "echo", "s3cret")
    dataplane.on_hello(replica, {"secret": "s3cret"})  # type: ignore[arg-type]
    spec = DeploymentSpec.parse(
        {"name": "echo", "model": {"path": "/m"}, "input": "echo-in", "output": "echo-out"}
    )
    reconciler = SimpleNamespace(deployments={"echo": SimpleNamespace(spec=spec)})
    runner = JobRunner(jobs, storage, dataplane, reconciler, interval=0.01, retry_base=1.0)
    task = asyncio.create_task(runner.run())
    yield World(runner, jobs, storage, replica, clock)
    await runner.close()
    await task


def answering(status: int, error: Exception) -> Any:
    def answer(_: Sent) -> Reply:
        return Reply(status, b"application/json", error_body(error))  # type: ignore[arg-type]

    return answer


def failing(error: Exception) -> Any:
    return lambda _: Reply.failed(error)  # type: ignore[arg-type]


async def test_a_result_is_written_under_the_key_derived_from_the_input(world: World) -> None:
    job_id = world.enqueue("a.txt", b'{"hello": 1}')
    row = await world.settled(job_id, "succeeded", "failed")
    assert (row.state, row.output_key, row.attempts) == ("succeeded", "a.txt.json", 1)
    assert world.storage.get("echo-out", "a.txt.json") == b'{"hello": 1}'
    assert [s.body for s in world.replica.sent] == [b'{"hello": 1}']


async def test_an_input_the_model_refuses_fails_at_once_with_the_models_message(
    world: World,
) -> None:
    world.replica.auto = answering(400, InvalidInput("x must be a number"))
    job_id = world.enqueue("a.json")
    row = await world.settled(job_id, "failed", "succeeded")
    assert (row.attempts, row.error, row.not_before) == (1, "400: x must be a number", None)
    assert len(world.replica.sent) == 1


async def test_a_replica_failure_comes_back_after_the_backoff_and_then_succeeds(
    world: World,
) -> None:
    world.replica.auto = failing(ReplicaFailed("replica r1 exited while handling this request"))
    job_id = world.enqueue("a.json")
    row = await world.settled(job_id, "queued")
    assert row.attempts == 1 and row.error == "502: replica r1 exited while handling this request"
    assert row.not_before == world.at() + timedelta(seconds=1)  # retry_delay(1), base 1 s
    world.replica.auto = echo
    world.clock.advance(1)
    world.runner.wake("echo")
    row = await world.settled(job_id, "succeeded", attempts=2)
    assert row.attempts == 2 and len(world.replica.sent) == 2


async def test_the_errors_retry_after_wins_over_a_shorter_backoff(world: World) -> None:
    world.replica.auto = failing(Unavailable("no replica became ready", retry_after=5))
    job_id = world.enqueue("a.json")
    row = await world.settled(job_id, "queued")
    assert row.not_before == world.at() + timedelta(seconds=5)
    world.clock.advance(5)
    world.replica.auto = echo
    world.runner.wake("echo")
    assert (await world.settled(job_id, "succeeded", attempts=2)).attempts == 2


async def test_a_job_whose_input_is_gone_fails_without_asking_the_model(world: World) -> None:
    job_id = world.enqueue("a.json")
    await world.settled(job_id, "succeeded")
    gone = world.jobs.enqueue(
        NewJob("echo", "ann", "echo-in", "never-written.json", "e", "application/json", "echo-out")
    )[0].id
    world.runner.wake("echo")
    row = await world.settled(gone, "failed")
    assert row.error == "input object 'never-written.json' is gone"
    assert len(world.replica.sent) == 1  # only the first job's


class Flaky:
    """The local store whose writes meet a full disk ``fails`` times before they succeed."""

    def __init__(self, inner: LocalBucketStore, fails: int) -> None:
        self.inner, self.fails = inner, fails

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put(self, *args: Any, **kw: Any) -> Any:
        if self.fails > 0:
            self.fails -= 1
            raise InsufficientStorage("the disk holding the buckets is full")
        return self.inner.put(*args, **kw)


async def test_a_job_waits_out_a_full_disk_and_a_lapsed_lease_starts_no_second_run(
    world: World,
) -> None:
    flaky = Flaky(world.storage, fails=10**9)
    world.runner.storage = flaky  # type: ignore[assignment]
    world.runner.storage_retry = 0.01
    job_id = world.enqueue("a.json")
    await eventually(lambda: _async(world.runner.storage_trouble), timeout=5, interval=0.005)
    assert "507: the disk holding the buckets is full" in str(world.runner.storage_trouble)

    # The note on the job is written just after storage_trouble is set: wait for it too.
    async def noted() -> Any:
        row = await world.settled(job_id, "running")
        return row if row.error is not None else None

    row = await eventually(noted, timeout=5, interval=0.005, what="the job's note")
    assert row.attempts == 1 and "waiting for storage" in row.error
    # Its lease runs out while it waits (say the heartbeat could not be written): the runner
    # claims it again, and starts no second run of it.
    world.clock.advance(world.runner.lease + 1)
    world.runner.wake("echo")
    await world.settled(job_id, "running", attempts=2)
    flaky.fails = 0  # space is back
    row = await world.settled(job_id, "succeeded")
    assert row.error is None and world.storage.get("echo-out", "a.json.json") == b'{"x": 1}'
    assert len(world.replica.sent) == 1  # predicted once; the result written once there was room
    assert world.runner.storage_trouble is None


class FullFor(LocalBucketStore):
    """A local store (results are then written in groups) whose disk is full for one key."""

    full_key = ""

    def put_many(self, bucket: str, items: Any) -> Any:
        full = InsufficientStorage("the disk holding the buckets is full")
        rest = [item for item in items if item[0] != self.full_key]
        stored = iter(super().put_many(bucket, rest))
        return [full if item[0] == self.full_key else next(stored) for item in items]


async def test_results_written_together_each_have_their_own_outcome(
    world: World, tmp_path: Path
) -> None:
    storage = FullFor(tmp_path / "buckets")
    storage.full_key = "c.json.json"
    world.runner.storage = storage
    world.runner.storage_retry = 0.01
    ids = {key: world.enqueue(f"{key}.json", b'{"k": "%s"}' % key.encode()) for key in "abcdef"}
    for key in "abdef":
        row = await world.settled(ids[key], "succeeded", "failed")
        assert (row.state, row.output_key) == ("succeeded", f"{key}.json.json")
        assert storage.get("echo-out", f"{key}.json.json") == b'{"k": "%s"}' % key.encode()
    row = await world.settled(ids["c"], "running")
    assert not storage.exists("echo-out", "c.json.json")
    storage.full_key = ""  # space is back: the waiting one goes on
    row = await world.settled(ids["c"], "succeeded")
    assert storage.get("echo-out", "c.json.json") == b'{"k": "c"}'


class RecordingFails:
    """The job store, whose recording of successes fails ``fails`` times (its disk is full)."""

    def __init__(self, inner: JobStore, fails: int) -> None:
        self.inner, self.fails, self.calls = inner, fails, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def succeed_many(self, *args: Any) -> None:
        self.calls += 1
        if self.fails > 0:
            self.fails -= 1
            raise InsufficientStorage("the store's disk is full", retry_after=0.01)
        self.inner.succeed_many(*args)


async def test_a_result_written_but_not_recorded_is_recorded_once_the_store_has_room(
    world: World,
) -> None:
    jobs = RecordingFails(world.jobs, fails=2)
    world.runner.jobs = jobs  # type: ignore[assignment]
    job_id = world.enqueue("a.json")
    row = await world.settled(job_id, "succeeded")
    assert (row.output_key, row.attempts) == ("a.json.json", 1)
    assert world.storage.get("echo-out", "a.json.json") == b'{"x": 1}'
    assert jobs.calls == 3  # with its result's write, then twice as a success of its own
    assert len(world.replica.sent) == 1


async def _async(value: Any) -> Any:
    return value
