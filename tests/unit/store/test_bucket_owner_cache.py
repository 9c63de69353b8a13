"""Bucket owners are read once per OWNER_TTL; forgetting a bucket drops it at once."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event

from modelplane.store.db import open_store
from modelplane.store.jobs import OWNER_TTL, JobStore
from modelplane.testing.clock import FakeClock


def test_a_known_owner_is_reused_within_the_ttl_and_read_again_after(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    clock = FakeClock()
    jobs = JobStore(store, clock=clock)
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))

    assert jobs.bucket_owner("pics") is None
    assert jobs.cached_owner("pics") is None  # unknown buckets are never cached
    store.ensure_user("ann")
    assert jobs.claim_bucket("pics", "ann") == "ann"

    reads_before = _owner_reads(statements)
    assert jobs.bucket_owner("pics") == "ann"
    assert _owner_reads(statements) == reads_before + 1
    clock.advance(OWNER_TTL - 0.01)
    assert jobs.cached_owner("pics") == "ann"
    assert jobs.bucket_owner("pics") == "ann"
    assert _owner_reads(statements) == reads_before + 1  # served from the cache
    clock.advance(0.02)
    assert jobs.cached_owner("pics") is None
    assert jobs.bucket_owner("pics") == "ann"
    assert _owner_reads(statements) == reads_before + 2

    jobs.forget_bucket("pics")
    assert jobs.cached_owner("pics") is None
    assert jobs.bucket_owner("pics") is None


def _owner_reads(statements: list[str]) -> int:
    return sum(1 for s in statements if s.lstrip().upper().startswith("SELECT") and "buckets" in s)
