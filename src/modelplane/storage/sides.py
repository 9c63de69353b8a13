"""The two sides of a batch run: where its inputs are read and where its results are written.

A side is a flat namespace of names (``cats/001.png``) over a local folder, a prefix of one of
the platform's buckets, or an S3 prefix. Reads and writes come in groups, so a batch over
thousands of small files pays one thread hop per group rather than one per file.

Results are named as jobs name theirs (:func:`modelplane.jobs.keys.output_key`): the input's
name plus an extension for the result's type (``cat.png`` -> ``cat.png.json``), which is what
makes a batch resumable: :func:`pending` tells which inputs have no result yet.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from modelplane.errors import DISK_FULL_HINT, InsufficientStorage, NotFound
from modelplane.storage.base import BucketStore
from modelplane.storage.keys import validate_key
from modelplane.storage.uri import S3Location

__all__ = ["BucketSide", "LocalSide", "S3Side", "Side", "pending"]

Result = tuple[str, bytes, str]
"""``(name, data, content_type)`` of one result to write."""


class Side(Protocol):
    def names(self) -> list[str]:
        """Every name on this side, sorted."""
        ...

    def read_many(self, names: list[str]) -> list[bytes | None]:
        """The contents of ``names``, in order; ``None`` for one that is gone."""
        ...

    def write_many(self, results: Iterable[Result]) -> None:
        """Write each result under its name (atomically: a reader never sees half of one)."""
        ...


class LocalSide:
    """A folder on the machine that runs the batch. Hidden files are not inputs.

    Files are read and written with plain ``os`` calls (a batch of small files spends most of
    its platform CPU here, and each call releases the GIL). A result is written into an
    unnamed file (``O_TMPFILE``) that is linked under its name once complete: a reader never
    sees half of it, and a platform killed mid-write leaves nothing behind. Where the
    filesystem has no unnamed files, or the name is taken, it goes to a hidden ``.NAME.part``
    renamed over the name instead.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._prefix = f"{self.root}/"
        self._unnamed = _O_TMPFILE != 0

    def __repr__(self) -> str:
        return str(self.root)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        out: list[str] = []
        for dirpath, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            prefix = "" if rel == "." else rel + "/"
            out.extend(prefix + f for f in files if not f.startswith("."))
        return sorted(out)

    def read_many(self, names: list[str]) -> list[bytes | None]:
        out: list[bytes | None] = []
        root = self._prefix
        for name in names:
            validate_key(name)
            try:
                fd = os.open(root + name, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                out.append(None)
                continue
            try:
                out.append(_read_all(fd))
            except IsADirectoryError:
                out.append(None)
            finally:
                os.close(fd)
        return out

    def write_many(self, results: Iterable[Result]) -> None:
        folders: dict[str, int] = {}  # each folder written into, open once per group
        try:
            for name, data, _ctype in results:
                validate_key(name)  # never outside the output folder
                folder, _, base = (self._prefix + name).rpartition("/")
                dir_fd = folders.get(folder)
                if dir_fd is None:
                    os.makedirs(folder, exist_ok=True)
                    dir_fd = folders[folder] = os.open(folder, _DIR_FLAGS)
                try:
                    if not (self._unnamed and self._link_unnamed(dir_fd, base, data)):
                        _replace(dir_fd, base, data)
                except OSError as exc:
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        raise InsufficientStorage(
                            f"the disk holding {self.root} is full ({os.strerror(exc.errno)}): "
                            f"{name!r} was not written",
                            hint=DISK_FULL_HINT,
                        ) from exc
                    raise
        finally:
            for dir_fd in folders.values():
                os.close(dir_fd)

    def _link_unnamed(self, dir_fd: int, base: str, data: bytes) -> bool:
        """Write ``data`` into an unnamed file and link it as ``base``. False: not done here
        (no unnamed files on this filesystem, or ``base`` exists)."""
        try:
            fd = os.open(".", _O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in _NO_TMPFILE:
                self._unnamed = False
                return False
            raise
        try:
            _write_all(fd, data)
            # the /proc link names the open file; a dir_fd makes this linkat(AT_SYMLINK_FOLLOW)
            os.link(f"/proc/self/fd/{fd}", base, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.EXDEV, errno.EPERM):  # no /proc, or refused
                self._unnamed = False
                return False
            raise
        finally:
            os.close(fd)
        return True


class BucketSide:
    """A prefix of one of the platform's buckets, through its :class:`BucketStore`."""

    def __init__(self, store: BucketStore, bucket: str, prefix: str = "") -> None:
        self.store = store
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"

    def __repr__(self) -> str:
        return f"{self.bucket}/{self.prefix}"

    def names(self) -> list[str]:
        out: list[str] = []
        after: str | None = None
        while True:
            try:
                page = self.store.list(self.bucket, self.prefix, start_after=after, limit=1000)
            except NotFound:
                return []
            out.extend(obj.key[len(self.prefix) :] for obj in page)
            if len(page) < 1000:
                return sorted(out)
            after = page[-1].key

    def read_many(self, names: list[str]) -> list[bytes | None]:
        out: list[bytes | None] = []
        for name in names:
            try:
                out.append(self.store.get(self.bucket, self.prefix + name))
            except NotFound:
                out.append(None)
        return out

    def write_many(self, results: Iterable[Result]) -> None:
        for name, data, ctype in results:
            self.store.put(self.bucket, self.prefix + name, data, ctype)


class S3Side:
    """An S3 prefix, through a boto3 client."""

    def __init__(self, location: S3Location, client: Any) -> None:
        self.location = location
        self.client = client

    def __repr__(self) -> str:
        return str(self.location)

    def names(self) -> list[str]:
        out: list[str] = []
        prefix = self.location.prefix
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.location.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                out.append(obj["Key"][len(prefix) :])
        return sorted(out)

    def read_many(self, names: list[str]) -> list[bytes | None]:
        out: list[bytes | None] = []
        for name in names:
            try:
                obj = self.client.get_object(
                    Bucket=self.location.bucket, Key=self.location.key_for(name)
                )
            except self.client.exceptions.NoSuchKey:
                out.append(None)
                continue
            out.append(obj["Body"].read())
        return out

    def write_many(self, results: Iterable[Result]) -> None:
        for name, data, ctype in results:
            self.client.put_object(
                Bucket=self.location.bucket,
                Key=self.location.key_for(name),
                Body=data,
                ContentType=ctype,
            )


_O_TMPFILE = getattr(os, "O_TMPFILE", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NO_TMPFILE = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL)
"""What ``open(O_TMPFILE)`` answers where the filesystem (or an old kernel) has none."""
_CHUNK = 1 << 16


def _read_all(fd: int) -> bytes:
    data = os.read(fd, _CHUNK)
    if not data:
        return data
    chunks = [data]
    step = _CHUNK if len(data) < _CHUNK else max(_CHUNK, os.fstat(fd).st_size - len(data) + 1)
    while more := os.read(fd, step):
        chunks.append(more)
    return data if len(chunks) == 1 else b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _replace(dir_fd: int, base: str, data: bytes) -> None:
    """Write ``data`` to a hidden temporary file and rename it over ``base``."""
    tmp = f".{base}.part"
    try:
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666, dir_fd=dir_fd
        )
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, base, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def pending(inputs: list[str], outputs: list[str]) -> list[str]:
    """Inputs with no result yet. Pure: a result is ``<input>.<ext>``, any extension."""
    have = set()
    for out in outputs:
        base, dot, ext = out.rpartition(".")
        if dot and "/" not in ext:
            have.add(base)
    return [name for name in inputs if name not in have]
