"""A service's ``mount`` on S3 buckets: a local folder kept in step with the bucket path.

On local buckets a mount is the bucket's own folder (:mod:`modelplane.oscar.links`). On S3 there
is no folder to link, so, as OSCAR's rclone sidecar does with its directory cache, the platform
keeps a mirror folder per service (``<data dir>/oscar-mounts/<service>/<bucket>/<folder>``) and
syncs it both ways every few seconds: objects new or changed in the bucket are downloaded, files
new or changed in the folder are uploaded (the folder wins when both changed). Deletions are not
carried over in either direction. :func:`sync` is one pass; :class:`MountMirrors` runs passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import mimetypes
import shutil
from pathlib import Path

from modelplane.errors import ModelplaneError
from modelplane.oscar.records import ServiceRecords
from modelplane.spec.paths import StoragePath, safe_name
from modelplane.storage import BucketStore, validate_key

log = logging.getLogger("modelplane.oscar")

State = dict[str, tuple[str, int, int]]
"""key -> (etag, mtime_ns, size) of the object and the file as they were when last in step."""


def mounts_root(data_dir: Path) -> Path:
    return data_dir / "oscar-mounts"


def mirror_folder(data_dir: Path, service: str, path: StoragePath) -> Path:
    return mounts_root(data_dir) / service / path.bucket / path.folder


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sync(storage: BucketStore, path: StoragePath, folder: Path, state: State) -> int:
    """One pass both ways; returns how many files moved."""
    moved = 0
    prefix = path.key_prefix
    folder.mkdir(parents=True, exist_ok=True)
    after: str | None = None
    while True:
        page = storage.list(path.bucket, prefix, start_after=after, limit=1000)
        for obj in page:
            rel = safe_name(obj.key[len(prefix) :])
            if rel is None or obj.key.endswith("/"):
                continue
            local = folder / rel
            seen = state.get(obj.key)
            stat = local.stat() if local.is_file() else None
            if seen is None and stat is not None and _md5(local) == obj.etag:
                state[obj.key] = (obj.etag, stat.st_mtime_ns, stat.st_size)
                continue
            local_changed = stat is not None and (
                seen is None or (stat.st_mtime_ns, stat.st_size) != seen[1:]
            )
            if (seen is None or seen[0] != obj.etag) and not local_changed:
                local.parent.mkdir(parents=True, exist_ok=True)
                storage.get_to_path(path.bucket, obj.key, local)
                stat = local.stat()
                state[obj.key] = (obj.etag, stat.st_mtime_ns, stat.st_size)
                moved += 1
        if len(page) < 1000:
            break
        after = page[-1].key
    for local in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        key = prefix + local.relative_to(folder).as_posix()
        try:
            validate_key(key)
        except ModelplaneError:
            continue
        stat = local.stat()
        seen = state.get(key)
        if seen is not None and (stat.st_mtime_ns, stat.st_size) == seen[1:]:
            continue
        ctype = mimetypes.guess_type(local.name)[0] or "application/octet-stream"
        with local.open("rb") as f:
            info = storage.put(path.bucket, key, f, ctype)
        state[key] = (info.etag, stat.st_mtime_ns, stat.st_size)
        moved += 1
    return moved


class MountMirrors:
    """Keeps every S3-mounted service's mirror folder in step with its bucket path."""

    def __init__(self, storage: BucketStore, data_dir: Path, *, interval: float = 2.0) -> None:
        self.storage = storage
        self.data_dir = data_dir
        self.records = ServiceRecords(data_dir / "oscar")
        self.interval = interval
        self._state: dict[str, State] = {}

    def mounts(self) -> dict[str, StoragePath]:
        out = {}
        for name in self.records.names():
            record = self.records.read(name)
            mount = (record.definition.get("mount") if record else None) or {}
            if isinstance(mount, dict) and mount.get("path"):
                with contextlib.suppress(ValueError):
                    out[name] = StoragePath.parse(str(mount["path"]))
        return out

    def pass_once(self) -> int:
        moved = 0
        mounts = self.mounts()
        for name, path in mounts.items():
            state = self._state.setdefault(f"{name}:{path}", {})
            try:
                moved += sync(self.storage, path, mirror_folder(self.data_dir, name, path), state)
            except ModelplaneError as exc:
                log.warning("mount of service %s (%s): %s", name, path, exc.message)
        root = mounts_root(self.data_dir)
        if root.is_dir():  # services that are gone leave no mirror behind
            for folder in root.iterdir():
                if folder.name not in mounts:
                    shutil.rmtree(folder, ignore_errors=True)
        return moved

    async def run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.pass_once)
            except Exception:  # storage down: try again next time
                log.exception("mount sync failed; retrying")
            await asyncio.sleep(self.interval)
