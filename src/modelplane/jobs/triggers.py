"""Which deployments an object triggers, and what a job asks of its replica. Pure.

Shared by uploads through the platform (:meth:`modelplane.core.jobs.Jobs.trigger`), the
bucket watcher and whatever reacts to storage events, so they all decide alike.
"""

from __future__ import annotations

import posixpath

from modelplane.spec import DeploymentSpec
from modelplane.spec.paths import matches


def triggers(spec: DeploymentSpec, bucket: str, key: str) -> bool:
    """Whether an object ``bucket/key`` becomes a job of the deployment ``spec`` describes."""
    if spec.input is None or spec.output is None:
        return False
    if spec.files is not None:
        return matches(spec.files.input, bucket, key)
    return spec.input == bucket


def watch_prefix(spec: DeploymentSpec) -> str:
    """The key prefix a listing of the input bucket needs to see (its input folder)."""
    return spec.files.input.key_prefix if spec.files is not None else ""


def request_meta(spec: DeploymentSpec, key: str) -> bytes:
    """The frame meta of a job's request: storage-path jobs hand over the object's own name."""
    if spec.files is None:
        return b""
    return b"files\x00" + posixpath.basename(key).encode("utf-8")
