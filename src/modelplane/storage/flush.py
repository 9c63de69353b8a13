"""Making a group of new files durable: one ``fsync`` each, or one ``syncfs`` for the lot.

Each ``fsync`` of a small new file writes its data block, its inode's block and, on most disks,
a flush of the device's write cache, and waits for all three; a group of 64 files pays that 64
times, rewriting the same inode-table blocks over and over. ``syncfs`` writes back everything
dirty on the filesystem once (the group's blocks together, each inode-table block once, one
cache flush) and waits once. Measured on this machine's ext4, 4,000 files in groups of 64: 0.17
against 0.64-0.83 ms of the writing process's CPU a file, 0.20 against 0.72-0.89 ms of the whole
machine's (kernel threads included), 4,100 against 1,000 files/s (README, "Jobs at speed").

The price: ``syncfs`` also writes back other processes' dirty data on the same filesystem. On a
disk that someone else is filling (a training writing checkpoints beside the buckets), a group
would wait for their writes too. So each ``syncfs`` is timed, and one that takes longer than
:data:`SLOW` seconds sends the next :data:`PAUSE` seconds back to one ``fsync`` a file, which
waits for this platform's files alone. Small groups (under :data:`MIN_GROUP`) always take
``fsync``: a single upload is not made to wait for anybody else.

Python has no ``os.syncfs``; it is libc's, through ``ctypes`` (one call, Linux only). Where it
is missing, every group takes ``fsync``. Since Linux 5.8 ``syncfs`` reports writeback errors of
the filesystem; after one, each file is ``fsync``-ed on its own, which tells whose data failed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import time
from collections.abc import Callable, Sequence

MIN_GROUP = 8
"""Files in a group at least for one ``syncfs`` instead of an ``fsync`` each."""
SLOW = 0.5
"""Seconds: a ``syncfs`` slower than this was waiting for other processes' data."""
PAUSE = 60.0
"""Seconds of one ``fsync`` a file after a slow ``syncfs``."""


def _reports_errors(release: str) -> bool:
    """Whether a Linux release's ``syncfs`` returns writeback errors (5.8 and later)."""
    try:
        major, minor = (int(part) for part in release.split(".", 2)[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 8)


def _libc_syncfs() -> Callable[[int], None] | None:
    if not sys.platform.startswith("linux") or not _reports_errors(os.uname().release):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        call = libc.syncfs
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int]
    call.restype = ctypes.c_int

    def syncfs(fd: int) -> None:
        if call(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    return syncfs


SYNCFS = _libc_syncfs()


class Flusher:
    """Flushes groups of open files to disk (see the module's text); one per store, shared by
    its threads (the decision's state is one float, written whole)."""

    def __init__(
        self,
        *,
        syncfs: Callable[[int], None] | None = SYNCFS,
        fsync: Callable[[int], None] = os.fsync,
        clock: Callable[[], float] = time.monotonic,
        min_group: int = MIN_GROUP,
    ) -> None:
        self._syncfs = syncfs
        self._fsync = fsync
        self._clock = clock
        self.min_group = min_group
        self._fsync_until = float("-inf")
        self.syncfs_calls = 0
        """``syncfs`` calls so far (for tests and metrics)."""

    def flush(self, fds: Sequence[int], devices: Sequence[int]) -> list[OSError | None]:
        """Make the files ``fds`` (on the filesystems ``devices``, ``st_dev`` each) durable:
        one outcome per file, ``None`` or the error of its own flush."""
        if self._use_syncfs(len(fds)):
            first: dict[int, int] = {}
            for fd, dev in zip(fds, devices, strict=True):
                first.setdefault(dev, fd)
            try:
                for fd in first.values():
                    self._timed_syncfs(fd)
            except OSError:
                pass  # each file's own fsync below tells whose data failed
            else:
                return [None] * len(fds)
        out: list[OSError | None] = []
        for fd in fds:
            try:
                self._fsync(fd)
            except OSError as exc:
                out.append(exc)
            else:
                out.append(None)
        return out

    def _use_syncfs(self, files: int) -> bool:
        return (
            self._syncfs is not None
            and files >= self.min_group
            and self._clock() >= self._fsync_until
        )

    def _timed_syncfs(self, fd: int) -> None:
        assert self._syncfs is not None
        start = self._clock()
        self.syncfs_calls += 1
        self._syncfs(fd)
        if self._clock() - start > SLOW:
            self._fsync_until = self._clock() + PAUSE


DEFAULT = Flusher()
"""The flusher of writes that name none (a store's own is passed by the store)."""
