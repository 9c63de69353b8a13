"""The bucket storage seam: one narrow interface, every backend behind it.

Asynchronous predictions read their inputs from a bucket and write their results to another.
Everything above this module (job triggers, the batch command, the buckets API) talks to a
:class:`BucketStore` and never to a filesystem or an SDK, so the local store, S3 and MinIO are
interchangeable, and one conformance suite checks them all.

The methods are synchronous: both backends do blocking I/O, and async callers wrap each call in
``asyncio.to_thread``. Every method validates bucket names and keys with :mod:`.keys` first and
reports failures with the classes of :mod:`modelplane.errors` only:

- :class:`~modelplane.errors.InvalidInput` for a bad bucket name, key or argument;
- :class:`~modelplane.errors.NotFound` for a missing bucket or object;
- :class:`~modelplane.errors.AlreadyExists` (409) when the request conflicts with what is stored
  (deleting a non-empty bucket without ``force``; on the local store, a key that needs a folder
  where an object already is, such as ``a/b`` next to ``a``).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "DEFAULT_LIST_LIMIT",
    "BucketStore",
    "ObjectInfo",
    "PutData",
]

#: The content type recorded when a caller does not give one.
DEFAULT_CONTENT_TYPE = "application/octet-stream"

#: The default and usual page size of :meth:`BucketStore.list` (S3's own page size).
DEFAULT_LIST_LIMIT = 1000

#: What :meth:`BucketStore.put` accepts: the whole content, or a binary file object to stream.
PutData = bytes | bytearray | memoryview | BinaryIO


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a store knows about one object, without its content.

    ``etag`` is the hex MD5 digest of the content, as S3 reports it for objects written in one
    part (which is how every backend here writes). ``last_modified`` is always timezone-aware
    UTC. ``content_type`` is ``None`` in results of :meth:`BucketStore.list`, because listings do
    not carry it on S3; :meth:`BucketStore.head` always fills it in.
    """

    bucket: str
    key: str
    size: int
    etag: str
    last_modified: datetime
    content_type: str | None

    def __post_init__(self) -> None:
        # Naive datetimes are how timestamps silently shift by hours; refuse them at the source.
        offset = self.last_modified.utcoffset()
        if offset is None or offset != timedelta(0):
            raise ValueError(
                f"last_modified must be timezone-aware UTC, got {self.last_modified!r}"
            )


@runtime_checkable
class BucketStore(Protocol):
    """Buckets of objects addressed by ``(bucket, key)``.

    Implementations: :class:`~modelplane.storage.local.LocalBucketStore` (default) and
    :class:`~modelplane.storage.s3.S3BucketStore` (AWS S3, MinIO and other S3 servers).
    """

    def create_bucket(self, name: str) -> None:
        """Make sure bucket ``name`` exists; creating one that already exists is not an error."""
        ...

    def delete_bucket(self, name: str, *, force: bool = False) -> None:
        """Delete bucket ``name``.

        A bucket that still holds objects is refused with ``AlreadyExists`` unless ``force`` is
        true, in which case its objects are deleted first. A missing bucket is ``NotFound``.
        """
        ...

    def bucket_exists(self, name: str) -> bool:
        """Tell whether bucket ``name`` exists (an invalid name is ``InvalidInput``)."""
        ...

    def list_buckets(self) -> builtins.list[str]:
        """Return the names of all buckets, sorted."""
        ...

    def put(
        self, bucket: str, key: str, data: PutData, content_type: str | None = None
    ) -> ObjectInfo:
        """Store ``data`` under ``key``, replacing any object there, and describe the result.

        A reader sees either the old content or the new one, never a part of either. ``data``
        may be bytes or a binary file object, which is read to its end in chunks. Without
        ``content_type`` the object is stored as :data:`DEFAULT_CONTENT_TYPE`.
        """
        ...

    def get(self, bucket: str, key: str) -> bytes:
        """Return the whole content of an object (use :meth:`get_to_path` for large ones)."""
        ...

    def get_to_path(self, bucket: str, key: str, path: Path) -> ObjectInfo:
        """Stream an object into the file ``path``, replacing it atomically; describe it.

        The parent folder of ``path`` must exist. Nothing is left at ``path`` if it fails.
        """
        ...

    def head(self, bucket: str, key: str) -> ObjectInfo:
        """Describe an object, content type included, without reading its content."""
        ...

    def exists(self, bucket: str, key: str) -> bool:
        """Tell whether an object exists (a missing bucket is ``NotFound``, as in :meth:`get`)."""
        ...

    def delete(self, bucket: str, key: str) -> None:
        """Delete an object. Deleting a missing object is not an error (as on S3)."""
        ...

    def list(
        self,
        bucket: str,
        prefix: str = "",
        start_after: str | None = None,
        limit: int = DEFAULT_LIST_LIMIT,
    ) -> builtins.list[ObjectInfo]:
        """Return up to ``limit`` objects whose keys start with ``prefix``, sorted by key.

        Keys sort by Unicode code point, which is S3's order (UTF-8 bytes). Only keys strictly
        greater than ``start_after`` are returned, so passing the last key of one page gets the
        next one: this is the cursor a watcher keeps to notice new objects. ``content_type`` is
        ``None`` in the results.
        """
        ...
