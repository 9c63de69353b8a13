"""Enqueuing a whole upload in one transaction, with the same idempotence as one by one."""

from __future__ import annotations

from pathlib import Path

from modelplane.store.db import open_store
from modelplane.store.jobs import JobStore, NewJob


def job(key: str, etag: str = "e1", deployment: str = "echo") -> NewJob:
    return NewJob(deployment, "ann", "in", key, etag, "application/json", "out")


def test_many_at_once_and_again_makes_no_second_job(tmp_path: Path) -> None:
    jobs = JobStore(open_store(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    first = jobs.enqueue_many([job("a"), job("b"), job("a", deployment="other")])
    assert [new for _, new in first] == [True, True, True]
    assert len({row.id for row, _ in first}) == 3
    again = jobs.enqueue_many([job("a"), job("b", etag="e2"), job("c")])
    assert [new for _, new in again] == [False, True, True]
    assert again[0][0].id == first[0][0].id  # the same input object: the same job
    assert jobs.counts() == {"echo": {"queued": 4}, "other": {"queued": 1}}
    # Duplicates inside one call are one job too.
    dup = jobs.enqueue_many([job("d"), job("d")])
    assert [new for _, new in dup] == [True, False] and dup[0][0].id == dup[1][0].id
    assert jobs.enqueue_many([]) == []


def test_successes_commit_together_and_only_for_the_lease_holder(tmp_path: Path) -> None:
    jobs = JobStore(open_store(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    jobs.enqueue_many([job("a"), job("b"), job("c")])
    claimed = jobs.claim("echo", "r1", lease=30, limit=2)
    [other] = jobs.claim("echo", "r2", lease=30, limit=5)
    done = [(j.id, j.input_key + ".json") for j in claimed] + [(other.id, "stolen.json")]
    jobs.succeed_many("r1", done)
    rows = {j.input_key: j for j in jobs.list("echo")}
    assert {k: r.state for k, r in rows.items()} == {
        "a": "succeeded", "b": "succeeded", "c": "running"  # c is r2's: untouched
    }
    assert rows["a"].output_key == "a.json" and rows["a"].lease_owner is None
    assert rows["a"].finished_at is not None
