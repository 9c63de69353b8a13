"""The batch-run rows: claims with leases, checkpoints, cancel, retry, finish."""

from __future__ import annotations

import os
import unittest.mock
from datetime import timedelta
from pathlib import Path

import pytest

from modelplane.storage.sides import LocalSide, pending
from modelplane.store.batches import BatchStore, NewBatch
from modelplane.store.db import open_store
from modelplane.store.models import utcnow


@pytest.fixture
def batches(tmp_path: Path) -> BatchStore:
    return BatchStore(open_store(f"sqlite:///{tmp_path / 'db.sqlite'}"))


def new(batches: BatchStore) -> str:
    return batches.create(NewBatch("ann", "echo", "bucket://in/", "bucket://out/")).id


def test_a_run_is_claimed_once_until_its_lease_runs_out(batches: BatchStore) -> None:
    run = new(batches)
    [claimed] = batches.claim("a", lease=30, limit=5)
    assert claimed.id == run and claimed.state == "running" and claimed.started_at
    assert batches.claim("b", lease=30, limit=5) == []
    later = utcnow() + timedelta(seconds=31)
    [again] = batches.claim("b", lease=30, limit=5, now=later)
    assert again.lease_owner == "b"
    assert batches.checkpoint(run, "a", 30, total=1, done=0, skipped=0) is None  # not a's now


def test_checkpoints_count_failures_once_and_finish_says_failed(batches: BatchStore) -> None:
    run = new(batches)
    batches.claim("a", lease=30, limit=1)
    state = batches.checkpoint(run, "a", 30, total=10, done=3, skipped=1,
                               failures=[("x.json", "400: bad", 1)])
    assert state == "running"
    batches.checkpoint(run, "a", 30, total=10, done=9, skipped=1,
                       failures=[("x.json", "400: bad again", 1)])
    row = batches.get(run)
    assert row is not None and (row.done, row.failed, row.skipped) == (9, 1, 1)
    assert [f.error for f in batches.failures(run)] == ["400: bad again"]
    assert batches.finish(run, "a", replica_seconds=4.0) == "failed"
    assert batches.claim("a", lease=30, limit=1) == []  # finished runs are not claimed


def test_retry_clears_failures_and_queues_again(batches: BatchStore) -> None:
    run = new(batches)
    batches.claim("a", lease=30, limit=1)
    batches.checkpoint(run, "a", 30, total=2, done=1, skipped=0,
                       failures=[("y", "500: boom", 3)])
    batches.finish(run, "a")
    row = batches.retry(run)
    assert row is not None and row.state == "queued" and row.failed == 0
    assert batches.failed_names(run) == set()
    assert [r.id for r in batches.claim("a", lease=30, limit=1)] == [run]


def test_cancel_tells_the_runner_at_its_next_checkpoint_and_stays(batches: BatchStore) -> None:
    run = new(batches)
    batches.claim("a", lease=30, limit=1)
    assert batches.cancel(run) == "cancelled"
    assert batches.checkpoint(run, "a", 30, total=5, done=2, skipped=0) == "cancelled"
    assert batches.finish(run, "a") == "cancelled"
    row = batches.get(run)
    assert row is not None and row.finished_at is not None
    queued = new(batches)
    assert batches.cancel(queued) == "cancelled"  # never claimed: finished at once
    row = batches.get(queued)
    assert row is not None and row.finished_at is not None


def test_release_all_lets_a_restarted_platform_claim_running_runs(batches: BatchStore) -> None:
    run = new(batches)
    batches.claim("old", lease=3600, limit=1)
    assert batches.release_all() == 1
    assert [r.id for r in batches.claim("new", lease=30, limit=1)] == [run]


def test_pending_inputs_are_those_without_a_result_of_any_type() -> None:
    assert pending(["a.png", "b.png", "c/d.png"], ["a.png.json", "c/d.png.out"]) == ["b.png"]
    assert pending(["x"], ["x.json/y"]) == ["x"]  # a folder named x.json is not a result


def test_a_local_side_reads_in_groups_skips_hidden_and_writes_atomically(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("hidden")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "1.json").write_text("1")
    (tmp_path / ".DS_Store").write_text("x")
    side = LocalSide(tmp_path)
    assert side.names() == ["a/1.json"]
    assert side.read_many(["a/1.json", "gone.json"]) == [b"1", None]
    out = LocalSide(tmp_path / "out")
    out.write_many([("deep/r.json", b"{}", "application/json")])
    assert (tmp_path / "out" / "deep" / "r.json").read_bytes() == b"{}"
    assert [p.name for p in (tmp_path / "out" / "deep").iterdir()] == ["r.json"]
    with pytest.raises(Exception, match="key"):
        out.write_many([("../escape", b"x", "text/plain")])


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed-file", "renamed-part"])
def test_a_local_side_replaces_results_whole_and_leaves_nothing_else(
    tmp_path: Path, unnamed: bool
) -> None:
    """Both ways of writing (an unnamed file linked under its name, or a hidden ``.part``
    renamed over it where there are none): whole files, overwrites, nothing left beside."""
    out = LocalSide(tmp_path)
    out._unnamed = out._unnamed and unnamed
    big = bytes(range(256)) * 1000  # several reads' worth
    out.write_many([("r.json", b"1", "application/json"), ("a/b/big.bin", big, "")])
    out.write_many([("r.json", b"again", "application/json")])  # a result written again
    assert (tmp_path / "r.json").read_bytes() == b"again"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "a", "a/b", "a/b/big.bin", "r.json"
    ]
    assert out.read_many(["a/b/big.bin", "a", "r.json"]) == [big, None, b"again"]
    assert oct((tmp_path / "r.json").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def test_a_local_side_that_finds_no_unnamed_files_writes_by_rename(tmp_path: Path) -> None:
    out = LocalSide(tmp_path)
    with unittest.mock.patch("modelplane.storage.sides._O_TMPFILE", os.O_DIRECTORY):
        # open(".", O_DIRECTORY | O_WRONLY) fails with EISDIR, as O_TMPFILE does where the
        # filesystem has no unnamed files (mocked: every filesystem here has them)
        out.write_many([("x.json", b"{}", "application/json")])
    assert out._unnamed is False
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    assert (tmp_path / "x.json").read_bytes() == b"{}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
