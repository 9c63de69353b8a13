"""The default bucket store: buckets as folders on the local filesystem.

Layout under ``root``::

    <bucket>/<key>                       the objects, a key's segments as nested folders
    .meta/<bucket>/<hh>/<sha256>.json    per-object metadata, where extended attributes are not

An object's metadata (content type, size, mtime, MD5) is a JSON value in the extended attribute
``user.modelplane.meta`` of its own file, set before the file is renamed into place: one syscall
on the open file rather than a second file written and renamed (that was a third of an upload's
cost). On a filesystem without user attributes it goes to a file under ``.meta`` instead. Bucket
names cannot start with a dot, so ``.meta`` never collides with a bucket, and no key is reserved
inside a bucket. Metadata files are named by the SHA-256 of the key rather than mirroring the
object tree, so they never conflict with folders and are never listed as objects.

Writes go through a temporary file in the object's own folder and an atomic rename (see
:mod:`._files`). Keys are validated first (:mod:`.keys`); then, as a second line of defence, every
path is checked to resolve to itself under the real root: any symbolic link on the way (a bucket
folder, an intermediate folder or the object itself) is refused rather than followed, so no
operation can read or write outside ``root``. Files dropped into a bucket folder by hand are
objects too: their MD5 is computed when their metadata is missing or stale, and their content type
is guessed from their name.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import hashlib
import json
import mimetypes
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import orjson

from modelplane.errors import (
    DISK_FULL_HINT,
    AlreadyExists,
    InsufficientStorage,
    InvalidInput,
    NotFound,
)
from modelplane.storage._files import (
    CHUNK_SIZE,
    XATTR,
    Staged,
    Written,
    commit_files,
    discard,
    is_temp_name,
    iter_chunks,
    stage_file,
    write_atomically,
)
from modelplane.storage._tree import walk_objects
from modelplane.storage.base import DEFAULT_CONTENT_TYPE, DEFAULT_LIST_LIMIT, ObjectInfo, PutData
from modelplane.storage.flush import Flusher
from modelplane.storage.keys import (
    validate_bucket_name,
    validate_content_type,
    validate_key,
    validate_prefix,
)

__all__ = ["LocalBucketStore"]

_META_DIR = ".meta"
# A concurrent delete may remove a folder between our mkdir and our write; that many retries.
_PUT_ATTEMPTS = 3
# Files a put_many keeps open at once (written, waiting for their flush).
_GROUP = 64


class LocalBucketStore:
    """A :class:`~modelplane.storage.base.BucketStore` in a folder of the local filesystem.

    Nothing is touched until the first call; ``root`` is created by the first
    :meth:`create_bucket`. Safe to use from several threads and processes at once.
    """

    def __init__(self, root: Path, *, flusher: Flusher | None = None) -> None:
        self._root = Path(root)
        self._flusher = flusher or Flusher()
        """Flushes a group of writes (one ``syncfs`` or an ``fsync`` each, see :mod:`.flush`)."""
        self._resolved_root: Path | None = None
        self._folders: dict[str, Path] = {}

    def __repr__(self) -> str:
        return f"LocalBucketStore(root={str(self._root)!r})"

    @property
    def root(self) -> Path:
        """The folder holding the buckets (``<root>/<bucket>/<key>``), resolved."""
        return self._real_root()

    # -- buckets -----------------------------------------------------------------------------

    def create_bucket(self, name: str) -> None:
        """Make sure bucket ``name`` exists as a folder under the root."""
        path = self._bucket_path(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir(exist_ok=True)
        except FileExistsError as exc:
            raise AlreadyExists(
                f"cannot create bucket {name!r}: a file of that name is in the way", bucket=name
            ) from exc
        except OSError as exc:
            if exc.errno in _DISK_FULL:
                raise _disk_full(exc, name, None) from exc
            raise

    def delete_bucket(self, name: str, *, force: bool = False) -> None:
        """Delete bucket ``name``; refused while it holds objects unless ``force``."""
        path = self._existing_bucket(name)
        if not force and next(walk_objects(path, "", None), None) is not None:
            raise AlreadyExists(
                f"bucket {name!r} is not empty",
                hint="delete its objects or pass force=True",
                bucket=name,
            )
        # rmtree unlinks symbolic links instead of following them, so this stays under the root.
        shutil.rmtree(path)
        shutil.rmtree(self._meta_root(name), ignore_errors=True)

    def bucket_exists(self, name: str) -> bool:
        """Tell whether bucket ``name`` exists."""
        return self._bucket_path(name).is_dir()

    def list_buckets(self) -> builtins.list[str]:
        """Return the names of all buckets, sorted."""
        try:
            entries = list(os.scandir(self._real_root()))
        except FileNotFoundError:
            return []
        names = []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and _is_bucket_name(entry.name):
                names.append(entry.name)
        return sorted(names)

    # -- objects -----------------------------------------------------------------------------

    def put(
        self, bucket: str, key: str, data: PutData, content_type: str | None = None
    ) -> ObjectInfo:
        """Store ``data`` under ``key`` atomically, replacing any object there."""
        [outcome] = self.put_many(bucket, [(key, data, content_type)])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def put_many(
        self, bucket: str, items: Sequence[tuple[str, PutData, str | None]]
    ) -> builtins.list[ObjectInfo | Exception]:
        """:meth:`put` for several objects of one bucket: one outcome per item, in order, its
        :class:`ObjectInfo` or the error that left its key as it was (the others are stored).

        Every file is written first and then all are flushed (:func:`commit_files`): the
        filesystem commits a group's fsyncs together, so many small objects (an upload of many
        files, the results of jobs that finished together) cost a fraction of the disk flushes
        and kernel CPU of one put each. Each object is still renamed into place only once its
        own data is on disk. At most :data:`_GROUP` files are open at once."""
        out: builtins.list[ObjectInfo | Exception] = []
        for first in range(0, len(items), _GROUP):
            out += self._put_group(bucket, items[first : first + _GROUP])
        return out

    def _put_group(
        self, bucket: str, items: Sequence[tuple[str, PutData, str | None]]
    ) -> builtins.list[ObjectInfo | Exception]:
        out: dict[int, ObjectInfo | Exception] = {}
        staged: builtins.list[tuple[int, str, Staged]] = []
        seen = _Seen()
        try:
            for i, (key, data, content_type) in enumerate(items):
                try:
                    ctype, s = self._stage(bucket, key, data, content_type, seen)
                except Exception as exc:  # this object's alone (a bad key, a conflict, …)
                    out[i] = exc
                    continue
                staged.append((i, ctype, s))
        except BaseException:
            for *_, s in staged:
                discard(s)
            raise
        committed = commit_files([s for *_, s in staged], flusher=self._flusher)
        for (i, ctype, _), written in zip(staged, committed, strict=True):
            key = items[i][0]
            if isinstance(written, OSError):
                out[i] = self._retry_put(bucket, key, written, items[i])
                continue
            out[i] = self._stored(bucket, key, ctype, written)
        return [out[i] for i in range(len(items))]

    def _stored(
        self, bucket: str, key: str, ctype: str, written: Written
    ) -> ObjectInfo | Exception:
        if not written.tagged:
            try:
                self._write_meta(bucket, key, _meta(key, written, ctype))
            except Exception as exc:
                return exc
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=written.size,
            etag=written.md5_hex,
            last_modified=_utc_from_ns(written.mtime_ns),
            content_type=ctype,
        )

    def _stage(
        self,
        bucket: str,
        key: str,
        data: PutData,
        content_type: str | None,
        seen: _Seen | None = None,
    ) -> tuple[str, Staged]:
        """``data`` written next to ``key``'s path under a temporary name (see put_many)."""
        ctype = (
            DEFAULT_CONTENT_TYPE if content_type is None else validate_content_type(content_type)
        )
        bucket_dir, path, found = self._walk_object(bucket, key, seen)

        def tag(w: Written) -> bytes:
            return orjson.dumps(_meta(key, w, ctype))

        for attempt in range(_PUT_ATTEMPTS):
            if attempt or found is not _PARENT_THERE:
                self._make_parents(bucket_dir, Path(path), bucket, key)
            try:
                return ctype, stage_file(path, iter_chunks(data), tag=tag)
            except FileNotFoundError:
                # The folder vanished under us (a concurrent delete pruned it); make it again.
                if attempt == _PUT_ATTEMPTS - 1:
                    raise
            except OSError as exc:
                _reraise_os_error(exc, bucket, key)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _retry_put(
        self,
        bucket: str,
        key: str,
        exc: OSError,
        item: tuple[str, PutData, str | None],
    ) -> ObjectInfo | Exception:
        """The outcome of an object whose flush or rename failed."""
        if isinstance(exc, IsADirectoryError):
            return _conflict(bucket, key)
        data = item[1]
        if isinstance(exc, FileNotFoundError) and isinstance(data, bytes | bytearray | memoryview):
            # Its folder was pruned between the write and the rename: once more, on its own.
            try:
                ctype, s = self._stage(bucket, key, data, item[2])
                [written] = commit_files([s], flusher=self._flusher)
                if isinstance(written, OSError):
                    _reraise_os_error(written, bucket, key)
            except Exception as again:
                return again
            return self._stored(bucket, key, ctype, written)
        try:
            _reraise_os_error(exc, bucket, key)
        except Exception as mapped:
            return mapped

    def get(self, bucket: str, key: str) -> bytes:
        """Return the whole content of an object."""
        # Its metadata is not read: the content is all that is asked for (a job's input).
        _, path, _ = self._walk_object(bucket, key)
        return self._read_whole(bucket, key, path)

    def get_many(self, bucket: str, keys: Sequence[str]) -> builtins.list[bytes | Exception]:
        """:meth:`get` for several objects of one bucket (the inputs of the jobs a runner just
        claimed): one outcome per key, in order, its content or its error. The bucket and the
        folders on the way are checked once for the lot."""
        seen = _Seen()
        out: builtins.list[bytes | Exception] = []
        for key in keys:
            try:
                _, path, _ = self._walk_object(bucket, key, seen)
                out.append(self._read_whole(bucket, key, path))
            except Exception as exc:
                out.append(exc)
        return out

    def _read_whole(self, bucket: str, key: str, path: str) -> bytes:
        fd = self._open_fd(bucket, key, path)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise _missing(bucket, key)  # a folder (or a device) is not an object
            # One read for the size the file has (plus one that finds its end), no buffer.
            pieces = [os.read(fd, st.st_size + 1)]
            while pieces[-1]:
                pieces.append(os.read(fd, CHUNK_SIZE))
            return pieces[0] if len(pieces) == 2 else b"".join(pieces)
        finally:
            os.close(fd)

    def get_to_path(self, bucket: str, key: str, path: Path) -> ObjectInfo:
        """Copy an object into the file ``path``, replacing it atomically."""
        with self._open(bucket, key) as (info, file):
            write_atomically(Path(path), iter(lambda: file.read(CHUNK_SIZE), b""))
            return info

    def head(self, bucket: str, key: str) -> ObjectInfo:
        """Describe an object without reading its content (unless its metadata is stale)."""
        _, path = self._object_path(bucket, key)
        st = _stat_object(path)
        if st is None:
            raise _missing(bucket, key)
        return self._info(bucket, key, path, st, with_content_type=True)

    def exists(self, bucket: str, key: str) -> bool:
        """Tell whether an object exists."""
        _, path = self._object_path(bucket, key)
        return _stat_object(path) is not None

    def delete(self, bucket: str, key: str) -> None:
        """Delete an object if it exists, then prune the folders it leaves empty."""
        bucket_dir, path = self._object_path(bucket, key)
        if _stat_object(path) is None:
            return
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        with contextlib.suppress(FileNotFoundError):
            self._meta_path(bucket, key).unlink()
        for parent in path.parents:
            if parent == bucket_dir:
                break
            try:
                parent.rmdir()
            except OSError:
                break  # not empty (or already gone): nothing more to prune

    def list(
        self,
        bucket: str,
        prefix: str = "",
        start_after: str | None = None,
        limit: int = DEFAULT_LIST_LIMIT,
    ) -> builtins.list[ObjectInfo]:
        """Return up to ``limit`` objects under ``prefix`` after ``start_after``, by key."""
        validate_prefix(prefix)
        if start_after is not None:
            validate_prefix(start_after, what="start_after")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit must be a positive integer, got {limit!r}", limit=limit)
        bucket_dir = self._existing_bucket(bucket)
        found: builtins.list[ObjectInfo] = []
        for key, path, st in walk_objects(bucket_dir, prefix, start_after):
            found.append(self._info(bucket, key, path, st, with_content_type=False))
            if len(found) >= limit:
                break
        return found

    def sweep_temporary(self, older_than: float, now: float) -> int:
        """Remove our temporary files (writes a crash or a kill cut short) last touched more
        than ``older_than`` seconds before ``now`` (wall time); returns how many. They are never
        objects, only litter. Only files of :func:`is_temp_name`'s pattern are touched."""
        removed = 0
        for folder, _dirs, files in os.walk(self._real_root()):
            for name in files:
                if not is_temp_name(name):
                    continue
                path = os.path.join(folder, name)
                try:
                    if os.lstat(path).st_mtime < now - older_than:
                        os.unlink(path)
                        removed += 1
                except FileNotFoundError:
                    continue  # finished (renamed) or removed meanwhile
        return removed

    # -- paths -------------------------------------------------------------------------------

    def bucket_folder(self, name: str) -> Path:
        """The folder holding bucket ``name``'s objects (for change notifications)."""
        return self._bucket_path(name)

    def key_of(self, bucket: str, path: Path | str) -> str | None:
        """The key a file under ``bucket``'s folder is stored as; ``None`` if it is no object
        (a temporary file, a path outside the bucket). Names only: the disk is not looked at.
        Every file event of an input bucket asks, so this is string work, not ``pathlib``."""
        prefix = f"{self._bucket_folder(bucket)}/"
        raw = os.fspath(path)
        if not raw.startswith(prefix):
            return None
        key = raw[len(prefix) :]
        if not key or any(is_temp_name(part) for part in key.split("/")):
            return None
        try:
            validate_key(key)
        except InvalidInput:
            return None
        return key

    def _real_root(self) -> Path:
        # Resolved once, on first use: every operation needs it and realpath walks the tree.
        if self._resolved_root is None:
            self._resolved_root = Path(os.path.realpath(self._root))
        return self._resolved_root

    def _bucket_path(self, name: str) -> Path:
        path = self._bucket_folder(name)
        _require_no_links(path, f"bucket {name!r}", self._real_root())
        return path

    def _bucket_folder(self, name: str) -> Path:
        """``root/name`` for a valid bucket name, unchecked on disk (a pure, cached mapping)."""
        path = self._folders.get(name)
        if path is None:
            validate_bucket_name(name)
            path = self._real_root() / name
            if len(self._folders) > 10_000:
                self._folders.clear()
            self._folders[name] = path
        return path

    def _existing_bucket(self, name: str) -> Path:
        # The root is resolved and a bucket is a direct child of it, so one lstat tells both
        # whether the bucket is there and whether it is a link (refused, never followed).
        path = self._bucket_folder(name)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"bucket {name!r} does not exist", bucket=name) from None
        if stat.S_ISLNK(st.st_mode):
            raise _link_refused(f"bucket {name!r}", path)
        if not stat.S_ISDIR(st.st_mode):
            raise NotFound(f"bucket {name!r} does not exist", bucket=name)
        return path

    def _object_path(self, bucket: str, key: str) -> tuple[Path, Path]:
        """Validate both names, check the bucket exists; return its folder and the key's path."""
        bucket_dir, path, _ = self._walk_object(bucket, key)
        return bucket_dir, Path(path)

    def _walk_object(
        self, bucket: str, key: str, seen: _Seen | None = None
    ) -> tuple[Path, str, object]:
        """:meth:`_object_path`, and how much of the path exists: :data:`_PARENT_THERE` when
        the key's folder does and its own name does not (a new object: nothing to make or
        clear before writing), another marker otherwise.

        Strings, not ``pathlib``, on the way: this runs for every object read or written,
        and joining and splitting paths was most of a small upload's CPU in Python. ``seen``:
        the bucket and the folders found real (no link) by this same group of writes, a
        moment ago, which are not looked at again."""
        validate_key(key)
        if seen is not None and seen.bucket is not None:
            bucket_dir = seen.bucket
        else:
            bucket_dir = self._existing_bucket(bucket)
            if seen is not None:
                seen.bucket = bucket_dir
        folder = os.fspath(bucket_dir)
        current = folder
        segments = key.split("/")
        last = len(segments) - 1
        start = 0
        if seen is not None and last:
            parent = key.rpartition("/")[0]
            if parent in seen.folders:
                current, start = f"{folder}/{parent}", last
        for i in range(start, last + 1):
            segment = segments[i]
            current = f"{current}/{segment}"
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                found: object = _PARENT_THERE if i == last else _PARTIAL
                break
            except OSError:  # not a folder, a name too long: nothing there to follow
                found = _PARTIAL
                break
            if stat.S_ISLNK(st.st_mode):
                raise _link_refused(f"object key {key!r} in bucket {bucket!r}", Path(current))
            if i < last and not stat.S_ISDIR(st.st_mode):
                found = _PARTIAL  # a file where a folder should be: put's slow path says so
                break
        else:
            found = _ALL_THERE
        if seen is not None and last and (found is _PARENT_THERE or found is _ALL_THERE):
            seen.folders.add(key.rpartition("/")[0])
        return bucket_dir, f"{folder}/{key}", found

    def _make_parents(self, bucket_dir: Path, path: Path, bucket: str, key: str) -> None:
        try:
            if stat.S_ISDIR(path.lstat().st_mode):
                path.rmdir()  # a leftover empty folder may give way to an object
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as exc:
            if exc.errno == errno.ENOTEMPTY:
                raise _conflict(bucket, key) from exc
            _reraise_os_error(exc, bucket, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise _conflict(bucket, key) from exc
        except OSError as exc:
            _reraise_os_error(exc, bucket, key)
        # Checked again after mkdir: a link planted meanwhile must not redirect the write.
        _require_no_links(path, f"object key {key!r} in bucket {bucket!r}", self._real_root())

    def _meta_root(self, bucket: str) -> Path:
        return self._real_root() / _META_DIR / bucket

    def _meta_path(self, bucket: str, key: str) -> Path:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self._meta_root(bucket) / digest[:2] / f"{digest}.json"

    # -- metadata ----------------------------------------------------------------------------

    def _write_meta(self, bucket: str, key: str, meta: dict[str, Any]) -> None:
        path = self._meta_path(bucket, key)
        # Metadata is advisory: if a crash loses it, size and etag are computed again from the
        # object and its type is guessed from its name. So it is not worth an fsync per object,
        # and a disk that fills between the object and its metadata does not undo the object.
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _require_no_links(path, f"metadata of {key!r} in bucket {bucket!r}", self._real_root())
            write_atomically(path, [json.dumps(meta).encode("utf-8")], durable=False)
        except OSError as exc:
            if exc.errno not in _DISK_FULL:
                raise

    def _read_meta(self, bucket: str, key: str, object_path: Path) -> dict[str, Any] | None:
        try:
            meta = orjson.loads(os.getxattr(object_path, XATTR, follow_symlinks=False))
        except (OSError, ValueError):
            pass  # not tagged (or not here): the metadata file, if any
        else:
            if isinstance(meta, dict) and meta.get("key") == key:
                return meta
        path = self._meta_path(bucket, key)
        try:
            _require_no_links(path, f"metadata of {key!r} in bucket {bucket!r}", self._real_root())
            meta = json.loads(path.read_bytes())
        except (OSError, ValueError, InvalidInput):
            return None  # missing or damaged metadata is rebuilt from the file itself
        return meta if isinstance(meta, dict) and meta.get("key") == key else None

    def _info(
        self, bucket: str, key: str, path: Path, st: os.stat_result, *, with_content_type: bool
    ) -> ObjectInfo:
        meta = self._read_meta(bucket, key, path)
        fresh = (
            meta is not None
            and meta.get("size") == st.st_size
            and meta.get("mtime_ns") == st.st_mtime_ns
        )
        if fresh and meta is not None:
            etag, ctype = str(meta["etag"]), str(meta.get("content_type") or DEFAULT_CONTENT_TYPE)
        else:
            # Written by someone else (or metadata lost): describe the file as it is now.
            etag = _md5_of(path)
            ctype = mimetypes.guess_type(key, strict=False)[0] or DEFAULT_CONTENT_TYPE
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=st.st_size,
            etag=etag,
            last_modified=_utc_from_ns(st.st_mtime_ns),
            content_type=ctype if with_content_type else None,
        )

    @contextlib.contextmanager
    def _open(self, bucket: str, key: str) -> Iterator[tuple[ObjectInfo, BinaryIO]]:
        _, path, _ = self._walk_object(bucket, key)
        fd = self._open_fd(bucket, key, path)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise _missing(bucket, key)  # a folder (or a device) is not an object
        with os.fdopen(fd, "rb") as file:
            yield self._info(bucket, key, Path(path), st, with_content_type=True), file

    @staticmethod
    def _open_fd(bucket: str, key: str, path: str) -> int:
        try:
            # O_NOFOLLOW: a link swapped in after the walk's check is refused, not followed.
            return os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | _CLOEXEC)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise _missing(bucket, key) from exc
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise _missing(bucket, key) from exc  # could never have been stored here
            _reraise_os_error(exc, bucket, key)


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _meta(key: str, written: Written, content_type: str) -> dict[str, Any]:
    return {
        "key": key,
        "size": written.size,
        "mtime_ns": written.mtime_ns,
        "etag": written.md5_hex,
        "content_type": content_type,
    }


def _require_no_links(path: Path, what: str, root: Path) -> None:
    """Refuse ``path`` unless it resolves to itself: no symbolic link anywhere on the way.

    ``root`` is the store's root, already resolved, and ``path`` lies under it, so only the
    components below the root can be links: one ``lstat`` each, up to the first that does not
    exist (nothing to follow there), rather than ``realpath``'s walk from ``/``, which was a
    fifth of an upload's cost."""
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        try:
            st = os.lstat(current)
        except OSError:  # missing, not a folder, a name too long: nothing there to follow
            return
        if stat.S_ISLNK(st.st_mode):
            raise _link_refused(what, path)


def _link_refused(what: str, path: Path) -> InvalidInput:
    return InvalidInput(
        f"{what} resolves through a symbolic link; the local store does not follow links",
        path=str(path),
    )


@dataclass(slots=True)
class _Seen:
    """What one group of writes found on disk already (see ``_walk_object``)."""

    bucket: Path | None = None
    folders: set[str] = field(default_factory=set)
    """Keys' parent folders (as key prefixes) found to be real folders."""


# How much of an object's path :meth:`LocalBucketStore._walk_object` found on disk.
_PARENT_THERE = object()
_PARTIAL = object()
_ALL_THERE = object()


def _stat_object(path: Path) -> os.stat_result | None:
    try:
        st = path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return None  # a name this filesystem cannot hold was never stored
        raise
    return st if stat.S_ISREG(st.st_mode) else None


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _utc_from_ns(ns: int) -> datetime:
    seconds, rest = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC) + timedelta(microseconds=rest // 1000)


def _is_bucket_name(name: str) -> bool:
    try:
        validate_bucket_name(name)
    except InvalidInput:
        return False
    return True


def _missing(bucket: str, key: str) -> NotFound:
    return NotFound(f"object {key!r} does not exist in bucket {bucket!r}", bucket=bucket, key=key)


def _conflict(bucket: str, key: str) -> AlreadyExists:
    # 409: the key needs a folder where an object is, or is a folder holding other objects.
    return AlreadyExists(
        f"cannot store {key!r} in bucket {bucket!r}: it conflicts with existing objects "
        "(the local store cannot hold both 'a' and 'a/b')",
        bucket=bucket,
        key=key,
    )


_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def _disk_full(exc: OSError, bucket: str, key: str | None) -> InsufficientStorage:
    cause = f"the disk holding the buckets is full ({os.strerror(exc.errno or errno.ENOSPC)})"
    if key is None:
        return InsufficientStorage(
            f"{cause}: bucket {bucket!r} was not created", hint=DISK_FULL_HINT, bucket=bucket
        )
    return InsufficientStorage(
        f"{cause}: {key!r} was not stored in bucket {bucket!r}",
        hint=DISK_FULL_HINT,
        bucket=bucket,
        key=key,
    )


def _reraise_os_error(exc: OSError, bucket: str, key: str) -> NoReturn:
    """Raise the domain error an OS error means for a key, or the OS error itself."""
    if exc.errno in _DISK_FULL:
        raise _disk_full(exc, bucket, key) from exc
    if exc.errno == errno.ENAMETOOLONG:
        raise InvalidInput(
            f"object key {key!r} has a segment too long for the local filesystem",
            bucket=bucket,
            key=key,
        ) from exc
    if exc.errno == errno.ELOOP:
        raise InvalidInput(
            f"object key {key!r} in bucket {bucket!r} is a symbolic link; not followed",
            bucket=bucket,
            key=key,
        ) from exc
    raise exc
