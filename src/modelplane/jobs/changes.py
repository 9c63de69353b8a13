"""Change notifications for local buckets: files written into a bucket folder, as they land.

The watcher would otherwise have to list every input bucket again and again, which costs CPU in
proportion to the bucket's size on a platform that is doing nothing. On Linux the kernel tells
us instead (inotify), through ``watchfiles``: a maintained binding of the Rust ``notify`` crate
that watches folders recursively, coalesces bursts and stops on an event — the few hundred lines
of inotify bookkeeping (watch descriptors per sub-folder, overflow, renames) we would otherwise
own. Our atomic writes (a temporary file renamed into place) arrive as one "added" for the final
name; temporary files and deletions are dropped here, by name, and whatever else is no object
by the watcher's look-up. A new folder is one such event, and the files written into it before
its watch was in place have none of their own: the watcher lists the folder when it sees one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import watchfiles

from modelplane.storage._files import is_temp_name
from modelplane.storage.local import LocalBucketStore

Changed = set[tuple[str, str]]
"""``{(bucket, key)}`` of objects added or overwritten."""


class LocalChanges:
    """Objects added to the folders of a :class:`LocalBucketStore`, from the kernel's events."""

    def __init__(
        self,
        store: LocalBucketStore,
        *,
        debounce_ms: int = 20,
        step_ms: int = 50,
        ready_ms: int = 1000,
    ) -> None:
        # step_ms: how often watchfiles' thread takes the GIL to look for events and for the
        # stop; ready_ms: how often an idle watch wakes the loop (once a second). At 10 and
        # 200 ms they were a third of an idle platform's CPU (0.024 -> 0.016 cores); events
        # now wait up to 50 ms and come in bigger batches.
        self.store = store
        self.ready_ms = ready_ms
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self.following: frozenset[str] = frozenset()
        """The buckets whose events are being delivered right now (from ready to stop)."""

    async def watch(
        self, buckets: set[str], stop: asyncio.Event, ready: asyncio.Event | None = None
    ) -> AsyncIterator[Changed]:
        """Yield what changed in ``buckets`` until ``stop`` is set; existing buckets only.

        ``ready`` is set once the kernel is watching: from then on no change is missed, so a
        listing made after it (to catch what landed before) leaves no gap."""
        folders: dict[Path, str] = {}
        for bucket in buckets:
            folder = self.store.bucket_folder(bucket)
            if folder.is_dir():
                folders[folder] = bucket
        if not folders:
            if ready is not None:
                ready.set()
            await stop.wait()
            return
        try:
            async for found in self._follow(folders, stop, ready):
                yield found
        finally:
            self.following = frozenset()

    async def _follow(
        self, folders: dict[Path, str], stop: asyncio.Event, ready: asyncio.Event | None
    ) -> AsyncIterator[Changed]:
        prefixes = [(f"{folder}/", bucket) for folder, bucket in folders.items()]
        async for changes in watchfiles.awatch(
            *folders,
            stop_event=stop,
            watch_filter=None,
            debounce=self.debounce_ms,
            step=self.step_ms,
            recursive=True,
            ignore_permission_denied=True,
            # An empty yield after each quiet ``rust_timeout``: the first one says the watch is
            # in place (watchfiles tells no sooner); the rest cost a wake-up and are dropped.
            rust_timeout=self.ready_ms,
            yield_on_timeout=True,
        ):
            if not self.following:
                self.following = frozenset(folders.values())
            if ready is not None and not ready.is_set():
                ready.set()
            found: Changed = set()
            for change, raw in changes:
                # Our own temporary files make most of the events: dropped by name, no stat.
                # Nor is anything else looked at on disk here: the watcher's look-up of each
                # object (``head``) drops what is not one (a new folder), and the platform's
                # own writes are dropped by name before any look-up.
                if change == watchfiles.Change.deleted or is_temp_name(raw.rpartition("/")[2]):
                    continue
                for prefix, bucket in prefixes:
                    if raw.startswith(prefix):
                        key = self.store.key_of(bucket, raw)
                        if key is not None:
                            found.add((bucket, key))
                        break
            if found:
                yield found
