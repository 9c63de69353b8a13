"""The job queue's rows on a fake clock: claims take leases, leases expire, only the holder
finishes a job, failures go back with a delay until attempts run out, a failed job is retried
with fresh attempts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelplane.store.db import open_store
from modelplane.store.jobs import JobStore, NewJob
from modelplane.testing.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def jobs(tmp_path: Path, clock: FakeClock) -> JobStore:
    return JobStore(open_store(f"sqlite:///{tmp_path / 'db.sqlite'}"), clock)


def enqueue(jobs: JobStore, *keys: str, max_attempts: int = 3) -> list[str]:
    made = jobs.enqueue_many(
        [
            NewJob("echo", "ann", "in", k, "e1", "application/json", "out", max_attempts)
            for k in keys
        ]
    )
    return [row.id for row, _ in made]


def at(clock: FakeClock) -> datetime:
    return datetime.fromtimestamp(clock.wall(), UTC)


def state(jobs: JobStore, job_id: str) -> str:
    row = jobs.get(job_id)
    assert row is not None
    return row.state


def test_a_claim_takes_the_oldest_queued_jobs_up_to_the_limit(
    jobs: JobStore, clock: FakeClock
) -> None:
    a, b, c = enqueue(jobs, "a", "b", "c")
    claimed = jobs.claim("echo", "r1", lease=30, limit=2)
    assert [j.id for j in claimed] == [a, b]
    for job in claimed:
        assert (job.state, job.lease_owner, job.attempts) == ("running", "r1", 1)
        assert job.lease_expires_at == at(clock) + timedelta(seconds=30)
    assert state(jobs, c) == "queued"
    assert jobs.claim("other", "r1", lease=30, limit=5) == []  # another deployment's queue
    assert jobs.active_counts() == {"echo": 3}


def test_a_running_job_is_taken_by_another_runner_only_once_its_lease_ran_out(
    jobs: JobStore, clock: FakeClock
) -> None:
    [a] = enqueue(jobs, "a")
    jobs.claim("echo", "r1", lease=30, limit=1)
    clock.advance(30)
    assert jobs.claim("echo", "r2", lease=30, limit=1) == []  # expires at, not before
    clock.advance(0.001)
    [taken] = jobs.claim("echo", "r2", lease=30, limit=1)
    assert (taken.id, taken.lease_owner, taken.attempts) == (a, "r2", 2)
    assert jobs.succeed(a, "r1", "a.json") is False  # the old holder may no longer finish it
    assert jobs.succeed(a, "r2", "a.json") is True
    row = jobs.get(a)
    assert row is not None and (row.state, row.output_key, row.lease_owner) == (
        "succeeded",
        "a.json",
        None,
    )
    assert row.finished_at == at(clock)


def test_a_heartbeat_moves_the_lease_on(jobs: JobStore, clock: FakeClock) -> None:
    [a] = enqueue(jobs, "a")
    jobs.claim("echo", "r1", lease=30, limit=1)
    clock.advance(20)
    jobs.heartbeat([a], "r1", lease=30)
    jobs.heartbeat([a], "r2", lease=3000)  # not r2's: ignored
    clock.advance(25)  # 45 s after the claim, 25 after the beat
    assert jobs.claim("echo", "r2", lease=30, limit=1) == []
    clock.advance(5.001)
    assert [j.id for j in jobs.claim("echo", "r2", lease=30, limit=1)] == [a]


def test_a_failure_with_a_delay_requeues_the_job_not_before_then(
    jobs: JobStore, clock: FakeClock
) -> None:
    [a] = enqueue(jobs, "a")
    jobs.claim("echo", "r1", lease=30, limit=1)
    assert jobs.fail(a, "r1", "503: no replica", retry_in=4.0) == "queued"
    row = jobs.get(a)
    assert row is not None and row.error == "503: no replica" and row.lease_owner is None
    assert row.not_before == at(clock) + timedelta(seconds=4)
    clock.advance(3.9)
    assert jobs.claim("echo", "r1", lease=30, limit=1) == []
    clock.advance(0.1)
    [again] = jobs.claim("echo", "r1", lease=30, limit=1)
    assert (again.id, again.attempts) == (a, 2)


def test_the_last_attempt_fails_for_good(jobs: JobStore, clock: FakeClock) -> None:
    [a] = enqueue(jobs, "a", max_attempts=2)
    for expected in ("queued", "failed"):
        jobs.claim("echo", "r1", lease=30, limit=1)
        assert jobs.fail(a, "r1", "502: replica exited", retry_in=0.0) == expected
    row = jobs.get(a)
    assert row is not None and (row.attempts, row.finished_at) == (2, at(clock))
    assert jobs.claim("echo", "r1", lease=30, limit=1) == []


def test_a_claim_takes_lost_and_queued_jobs_oldest_first_and_skips_those_not_yet_due(
    jobs: JobStore, clock: FakeClock
) -> None:
    made = []
    for key in ("a", "b", "c", "d"):
        made += enqueue(jobs, key)
        clock.advance(1)
    a, b, c, d = made
    jobs.claim("echo", "r1", lease=30, limit=3)  # a, b and c run
    assert jobs.fail(c, "r1", "503: busy", retry_in=100) == "queued"  # due in 100 s
    clock.advance(31)  # the leases of a and b ran out
    [e] = enqueue(jobs, "e")
    assert [j.id for j in jobs.claim("echo", "r2", lease=30, limit=3)] == [a, b, d]
    assert [j.id for j in jobs.claim("echo", "r2", lease=30, limit=3)] == [e]
    clock.advance(100)  # c is due, and the leases of r2's four ran out: one list, oldest first
    claimed = jobs.claim("echo", "r3", lease=30, limit=5)
    assert [j.id for j in claimed] == [a, b, c, d, e]
    assert [j.attempts for j in claimed] == [3, 3, 2, 2, 2]


def test_no_retry_fails_at_once_and_only_the_holder_may_fail_a_job(jobs: JobStore) -> None:
    a, b = enqueue(jobs, "a", "b")
    jobs.claim("echo", "r1", lease=30, limit=2)
    assert jobs.fail(a, "r2", "400: not yours", retry_in=None) == "running"
    assert jobs.fail(a, "r1", "400: bad input", retry_in=None) == "failed"
    assert jobs.fail("0" * 32, "r1", "gone", retry_in=None) == "failed"  # no such job
    assert state(jobs, b) == "running"


def test_retry_gives_a_failed_job_fresh_attempts_and_nothing_else(jobs: JobStore) -> None:
    a, b = enqueue(jobs, "a", "b", max_attempts=1)
    jobs.claim("echo", "r1", lease=30, limit=2)
    jobs.fail(a, "r1", "400: bad input", retry_in=None)
    assert jobs.retry(b) is False  # running: not failed
    assert jobs.retry(a) is True
    row = jobs.get(a)
    assert row is not None
    assert (row.state, row.attempts, row.error, row.finished_at) == ("queued", 0, None, None)
    assert jobs.retry(a) is False  # queued now
    [again] = jobs.claim("echo", "r2", lease=30, limit=5)
    assert (again.id, again.attempts) == (a, 1)


def test_release_all_requeues_the_running_jobs_of_one_runner_or_of_all(jobs: JobStore) -> None:
    a, b, c = enqueue(jobs, "a", "b", "c")
    jobs.claim("echo", "r1", lease=30, limit=2)
    jobs.claim("echo", "r2", lease=30, limit=1)
    assert jobs.release_all("r2") == 1 and state(jobs, c) == "queued"
    assert state(jobs, a) == "running"
    assert jobs.release_all() == 2 and {state(jobs, j) for j in (a, b)} == {"queued"}
    assert jobs.counts() == {"echo": {"queued": 3}}


def test_runs_cut_short_by_the_platform_use_up_no_attempts(
    jobs: JobStore, clock: FakeClock
) -> None:
    # Killed three times while running (requeued at each restart) and once more found with its
    # lease run out: the job still gets its two retries for a failure of its own.
    [a] = enqueue(jobs, "a", max_attempts=2)
    for _ in range(3):
        jobs.claim("echo", "r1", lease=30, limit=1)
        assert jobs.release_all() == 1
    jobs.claim("echo", "r1", lease=30, limit=1)
    clock.advance(31)
    [taken] = jobs.claim("echo", "r2", lease=30, limit=1)
    assert (taken.attempts, taken.interrupted) == (5, 4)
    assert jobs.fail(a, "r2", "502: replica exited", retry_in=0.0) == "queued"
    jobs.claim("echo", "r2", lease=30, limit=1)
    assert jobs.fail(a, "r2", "502: replica exited", retry_in=0.0) == "failed"
    row = jobs.get(a)
    assert row is not None and (row.attempts, row.interrupted) == (6, 4)
    assert jobs.retry(a) is True
    row = jobs.get(a)
    assert row is not None and (row.attempts, row.interrupted) == (0, 0)
