"""The two sides of a batch run: where its inputs are read and where its results are written.

A side is a flat namespace of names (``cats/001.png``) over a local folder, a prefix of one of
the platform's buckets, or an S3 prefix. Reads and writes come in groups, so a batch over
thousands of small files pays one thread hop per group rather than one per file.

Results are named as jobs name theirs (:func:`modelplane.jobs.keys.output_key`): the input's
name plus an extension for the result's type (``cat.png`` -> ``cat.png.json``), which is what
makes a batch resumable: :func:`pending` tells which inputs have no result yet.
"""

from __future__ import annotations

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
    """A folder on the machine that runs the batch. Hidden files are not inputs."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return str(self.root)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        out = []
        for dirpath, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root)
            for f in files:
                if not f.startswith("."):
                    out.append((rel / f).as_posix())
        return sorted(out)

    def read_many(self, names: list[str]) -> list[bytes | None]:
        out: list[bytes | None] = []
        for name in names:
            validate_key(name)
            try:
                out.append((self.root / name).read_bytes())
            except (FileNotFoundError, IsADirectoryError):
                out.append(None)
        return out

    def write_many(self, results: Iterable[Result]) -> None:
        made: set[Path] = set()
        for name, data, _ctype in results:
            validate_key(name)  # never outside the output folder
            path = self.root / name
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            tmp = path.with_name(f".{path.name}.part")
            try:
                tmp.write_bytes(data)
                os.replace(tmp, path)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise InsufficientStorage(
                        f"the disk holding {self.root} is full ({os.strerror(exc.errno)}): "
                        f"{name!r} was not written",
                        hint=DISK_FULL_HINT,
                    ) from exc
                raise


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
        out = []
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


def pending(inputs: list[str], outputs: list[str]) -> list[str]:
    """Inputs with no result yet. Pure: a result is ``<input>.<ext>``, any extension."""
    have = set()
    for out in outputs:
        base, dot, ext = out.rpartition(".")
        if dot and "/" not in ext:
            have.add(base)
    return [name for name in inputs if name not in have]
