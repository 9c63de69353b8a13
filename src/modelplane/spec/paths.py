"""Storage paths: where a deployment's jobs come from and where their files go (OSCAR's layout).

A path is a bucket and a folder in it, with optional filters on the file names under that folder.
A deployment with ``files`` keeps OSCAR's semantics for its jobs: an object triggers a job only if
it lies under the input folder and passes the input filters; the model sees the object under its
own name; every file the job leaves behind is written, under its own name, to each output path
whose filters it passes. Without ``files`` a deployment keeps the bucket-to-bucket layout
(``input``/``output`` buckets, one result per job at ``<input key>.<ext>``).

Pure: the spec's types and the decisions on them (:func:`matches`, :func:`overlaps`,
:func:`destinations`), which the job watcher, the upload path and the OSCAR front share.
"""

from __future__ import annotations

import posixpath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_BUCKET_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789.-")
# The validators' rules below, as the OpenAPI document states them.
BUCKET_SCHEMA: dict[str, Any] = {"minLength": 3, "maxLength": 63, "pattern": r"^[a-z0-9.-]+$"}
_PART = r"(?!\.\.?(/|$))[^/]+"
FOLDER_SCHEMA: dict[str, Any] = {
    "pattern": rf"^/*({_PART}(/{_PART})*)?/*$",
    "description": "'/'-separated parts, none empty, '.' or '..' (slashes at either end are "
    "dropped); '' is the whole bucket",
}


class StoragePath(BaseModel):
    """``bucket`` and ``folder`` (no slashes at either end; '' is the whole bucket), and file name
    filters relative to the folder: a name passes if it starts with one of ``prefix`` (none: any)
    and ends with one of ``suffix`` (none: any)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str = Field(json_schema_extra=BUCKET_SCHEMA)
    folder: str = Field(default="", json_schema_extra=FOLDER_SCHEMA)
    prefix: tuple[str, ...] = ()
    suffix: tuple[str, ...] = ()

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, v: str) -> str:
        if not 3 <= len(v) <= 63 or not set(v) <= _BUCKET_CHARS:
            raise ValueError(f"bucket {v!r}: 3-63 lowercase letters, digits, '.' or '-'")
        return v

    @field_validator("folder")
    @classmethod
    def _folder(cls, v: str) -> str:
        v = v.strip("/")
        if any(part in ("", ".", "..") for part in v.split("/")) and v:
            raise ValueError(f"folder {v!r}: no empty, '.' or '..' parts")
        return v

    @classmethod
    def parse(cls, path: str, **filters: Any) -> StoragePath:
        """From OSCAR's ``bucket/folder/...`` notation."""
        bucket, _, folder = path.strip("/").partition("/")
        return cls(bucket=bucket, folder=folder, **filters)

    def __str__(self) -> str:
        return f"{self.bucket}/{self.folder}" if self.folder else self.bucket

    @property
    def key_prefix(self) -> str:
        """What every key under this path starts with ('' or ``folder/``)."""
        return f"{self.folder}/" if self.folder else ""

    def name_passes(self, name: str) -> bool:
        """Whether a file name (relative to the folder) passes the filters."""
        if self.prefix and not any(name.startswith(p) for p in self.prefix):
            return False
        return not self.suffix or any(name.endswith(s) for s in self.suffix)

    def key_for(self, name: str) -> str:
        return self.key_prefix + name


class JobFiles(BaseModel):
    """OSCAR-style job storage: one input path, one or more output paths."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: StoragePath
    outputs: tuple[StoragePath, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _no_loop(self) -> JobFiles:
        for out in self.outputs:
            if overlaps(self.input, out):
                raise ValueError(
                    f"output path {out} lies within input path {self.input} (or around it): "
                    "every result would trigger a new job; use another folder, e.g. "
                    f"{self.input.bucket}/out with the input in {self.input.bucket}/in"
                )
        return self


def matches(path: StoragePath, bucket: str, key: str) -> bool:
    """Whether the object ``bucket/key`` triggers a job of a deployment reading ``path``."""
    if bucket != path.bucket or not key.startswith(path.key_prefix) or key.endswith("/"):
        return False
    return path.name_passes(key[len(path.key_prefix) :])


def overlaps(source: StoragePath, target: StoragePath) -> bool:
    """Whether files written to ``target`` could trigger jobs reading ``source``: same bucket and
    one folder inside the other, unless their filters keep every written name out."""
    if source.bucket != target.bucket:
        return False
    a, b = source.key_prefix, target.key_prefix
    if not (a.startswith(b) or b.startswith(a)):
        return False
    # The target only receives names ending with one of its suffixes; a source none of whose
    # suffixes can end such a name is never reached (neither suffix ends with the other).
    if source.suffix and target.suffix:
        return any(t.endswith(s) or s.endswith(t) for s in source.suffix for t in target.suffix)
    return True


def destinations(outputs: tuple[StoragePath, ...], name: str) -> list[tuple[str, str]]:
    """``(bucket, key)`` for each output path a file named ``name`` goes to (its filters pass)."""
    return [(o.bucket, o.key_for(name)) for o in outputs if o.name_passes(name)]


def safe_name(name: str) -> str | None:
    """A relative file name as written by a job, or None if it would escape its folder."""
    norm = posixpath.normpath(name.replace("\\", "/")).lstrip("/")
    if norm in ("", ".") or norm.startswith("../") or norm == "..":
        return None
    return norm


def find_cycle(
    graph: dict[str, tuple[StoragePath, tuple[StoragePath, ...]]], start: str
) -> list[str] | None:
    """A loop of deployments through ``start`` (``[start, b, ..., start]``), or None.

    ``graph`` maps each deployment to its input path and output paths; ``a`` feeds ``b`` when an
    output path of ``a`` overlaps the input path of ``b``. Pure."""

    def feeds(a: str) -> list[str]:
        return sorted(
            b for b, (inp, _) in graph.items() if any(overlaps(inp, o) for o in graph[a][1])
        )

    stack: list[tuple[str, list[str]]] = [(start, [start])]
    visited: set[str] = set()
    while stack:
        node, trail = stack.pop()
        for nxt in feeds(node):
            if nxt == start:
                return [*trail, start]
            if nxt not in visited:
                visited.add(nxt)
                stack.append((nxt, [*trail, nxt]))
    return None
