"""Groups of new files are flushed with one syncfs, small groups and slow moments with an fsync
each, and a failed syncfs tells whose data failed through each file's own fsync."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from modelplane.storage import LocalBucketStore
from modelplane.storage import flush as flush_mod
from modelplane.storage.flush import Flusher
from modelplane.testing.clock import FakeClock


class Disk:
    """Records the flushes asked for; ``slow`` seconds pass on the clock during a syncfs."""

    def __init__(self, clock: FakeClock, *, slow: float = 0.0) -> None:
        self.clock = clock
        self.slow = slow
        self.calls: list[tuple[str, int]] = []
        self.failing: set[int] = set()
        self.syncfs_fails = False

    def syncfs(self, fd: int) -> None:
        self.calls.append(("syncfs", fd))
        self.clock.advance(self.slow)
        if self.syncfs_fails:
            raise OSError(errno.EIO, "writeback failed")

    def fsync(self, fd: int) -> None:
        self.calls.append(("fsync", fd))
        if fd in self.failing:
            raise OSError(errno.EIO, "writeback failed")


def flusher(disk: Disk) -> Flusher:
    return Flusher(syncfs=disk.syncfs, fsync=disk.fsync, clock=disk.clock.now, min_group=4)


def test_a_group_takes_one_syncfs_per_filesystem_and_a_small_one_an_fsync_each() -> None:
    disk = Disk(FakeClock())
    f = flusher(disk)
    assert f.flush([10, 11, 12, 13, 14], [1, 1, 2, 1, 2]) == [None] * 5
    assert disk.calls == [("syncfs", 10), ("syncfs", 12)]
    disk.calls.clear()
    assert f.flush([20, 21, 22], [1, 1, 1]) == [None] * 3
    assert disk.calls == [("fsync", 20), ("fsync", 21), ("fsync", 22)]


def test_a_slow_syncfs_sends_the_next_minute_back_to_fsync() -> None:
    clock = FakeClock()
    disk = Disk(clock, slow=flush_mod.SLOW + 0.1)
    f = flusher(disk)
    f.flush([1, 2, 3, 4], [7] * 4)
    assert disk.calls == [("syncfs", 1)]
    disk.calls.clear()
    disk.slow = 0.0
    f.flush([1, 2, 3, 4], [7] * 4)
    assert [c for c, _ in disk.calls] == ["fsync"] * 4
    clock.advance(flush_mod.PAUSE)
    disk.calls.clear()
    f.flush([1, 2, 3, 4], [7] * 4)
    assert disk.calls == [("syncfs", 1)]


def test_after_a_failed_syncfs_each_file_reports_its_own_outcome() -> None:
    disk = Disk(FakeClock())
    disk.syncfs_fails = True
    disk.failing = {3}
    outcome = flusher(disk).flush([1, 2, 3, 4], [7] * 4)
    assert [type(o).__name__ if o else None for o in outcome] == [None, None, "OSError", None]
    assert disk.calls == [("syncfs", 1)] + [("fsync", fd) for fd in (1, 2, 3, 4)]


def test_without_syncfs_every_file_is_fsynced() -> None:
    disk = Disk(FakeClock())
    f = Flusher(syncfs=None, fsync=disk.fsync, clock=disk.clock.now, min_group=1)
    f.flush([1, 2], [7, 7])
    assert disk.calls == [("fsync", 1), ("fsync", 2)]


@pytest.mark.parametrize(
    ("release", "reports"),
    [
        ("6.1.0-18-amd64", True),
        ("5.8.0", True),
        ("5.4.0-150-generic", False),
        ("4.19", False),
        ("weird", False),
    ],
)
def test_syncfs_is_used_only_where_it_reports_writeback_errors(release: str, reports: bool) -> None:
    assert flush_mod._reports_errors(release) is reports


@pytest.mark.skipif(flush_mod.SYNCFS is None, reason="no syncfs here (Linux >= 5.8 only)")
def test_a_store_writes_a_group_through_the_real_syncfs(tmp_path: Path) -> None:
    real = Flusher(min_group=4)
    store = LocalBucketStore(tmp_path / "b", flusher=real)
    store.create_bucket("inputs")
    items = [(f"k/{i}.json", b'{"i": %d}' % i, "application/json") for i in range(10)]
    outcomes = store.put_many("inputs", items)
    assert all(not isinstance(o, Exception) for o in outcomes)
    assert real.syncfs_calls == 1
    assert store.get_many("inputs", [k for k, _, _ in items]) == [d for _, d, _ in items]
    assert not [n for n in os.listdir(tmp_path / "b" / "inputs" / "k") if n.startswith(".")]
    store.put("inputs", "one.json", b"{}", "application/json")  # a group of one: an fsync
    assert real.syncfs_calls == 1
