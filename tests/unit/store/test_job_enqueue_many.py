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
