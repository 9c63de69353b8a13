"""File helpers shared by the backends: reading put data in chunks and atomic file writes.

Both stores write whole files the same way: into a temporary file in the destination's own
folder (so the final ``os.replace`` is a rename within one filesystem, hence atomic), flushed to
disk, then renamed over the destination. A crash leaves the old file or the new one, and at
worst a stray temporary file whose name :func:`is_temp_name` recognises.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from modelplane.errors import InvalidInput
from modelplane.storage.base import PutData
from modelplane.storage.flush import DEFAULT as DEFAULT_FLUSHER
from modelplane.storage.flush import Flusher

__all__ = [
    "CHUNK_SIZE",
    "XATTR",
    "Staged",
    "Written",
    "commit_files",
    "discard",
    "is_temp_name",
    "iter_chunks",
    "stage_file",
    "write_atomically",
]

#: How much is read or written at a time when streaming.
CHUNK_SIZE = 1024 * 1024

_TEMP_PREFIX = ".modelplane-tmp-"
_TEMP_SUFFIX = ".part"
# tempfile.mkstemp draws 8 characters from this alphabet between prefix and suffix.
_TEMP_RE = re.compile(re.escape(_TEMP_PREFIX) + r"[a-z0-9_]{8}" + re.escape(_TEMP_SUFFIX))


#: The extended attribute that carries an object's metadata on the object's own file.
XATTR = "user.modelplane.meta"

# setxattr errors that mean "not here" (a filesystem without user attributes, a value too big
# for what the inode has left) rather than a failed write: the caller keeps the metadata
# elsewhere.
_NO_XATTR = {errno.ENOTSUP, errno.EOPNOTSUPP, errno.E2BIG, errno.ENOSPC, errno.EPERM, errno.EACCES}


@dataclass(frozen=True, slots=True)
class Written:
    """The outcome of :func:`write_atomically`: the file's stat and its content's MD5."""

    size: int
    md5_hex: str
    mtime_ns: int
    tagged: bool = False
    """Whether the ``tag`` of :func:`write_atomically` went onto the file as :data:`XATTR`."""


def is_temp_name(name: str) -> bool:
    """Tell whether a file name is one of our in-flight temporary files (never an object)."""
    return _TEMP_RE.fullmatch(name) is not None


def iter_chunks(data: PutData, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield the content of ``data`` (bytes-like or a binary file object) in chunks."""
    if type(data) is bytes and len(data) <= chunk_size:
        return iter((data,))  # most objects: one chunk, no generator
    return _chunks(data, chunk_size)


def _chunks(data: PutData, chunk_size: int) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data).cast("B")
        for start in range(0, len(view), chunk_size):
            yield bytes(view[start : start + chunk_size])
        return
    read = getattr(data, "read", None)
    if not callable(read):
        raise InvalidInput(f"data must be bytes or a binary file object, not {type(data).__name__}")
    while True:
        chunk = read(chunk_size)
        if not chunk:
            return
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise InvalidInput(
                f"data must be opened in binary mode: read() returned {type(chunk).__name__}"
            )
        yield bytes(chunk)


def write_atomically(
    path: str | os.PathLike[str],
    chunks: Iterable[bytes],
    *,
    durable: bool = True,
    tag: Callable[[Written], bytes] | None = None,
) -> Written:
    """Write ``chunks`` to ``path`` through a temporary sibling file and an atomic rename.

    The parent folder must exist. On any failure the temporary file is removed and ``path`` is
    left as it was. Raises ``IsADirectoryError`` if ``path`` is a folder. ``durable=False``
    skips the fsync, for data that can be rebuilt if a crash loses it. ``tag`` turns what was
    written into a value set as the file's :data:`XATTR` before the rename, so the file appears
    with its metadata, in one place (``Written.tagged`` says whether the filesystem took it).
    """
    [outcome] = commit_files([stage_file(path, chunks, tag=tag)], durable=durable)
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


@dataclass(slots=True)
class Staged:
    """A file written under its temporary name and still open: :func:`commit_files` makes it
    durable and renames it into place (or :func:`discard` removes it)."""

    fd: int
    temp: str
    target: str
    written: Written
    dev: int = 0
    """The filesystem it is on (``st_dev``): one ``syncfs`` per filesystem of a group."""


def stage_file(
    path: str | os.PathLike[str],
    chunks: Iterable[bytes],
    *,
    tag: Callable[[Written], bytes] | None = None,
) -> Staged:
    """The first half of :func:`write_atomically`: ``chunks`` in a new temporary sibling of
    ``path``, tagged, not yet flushed nor renamed. Nothing is left behind if it fails."""
    # Strings from here on: a pathlib round trip per write was a tenth of a small object's.
    target = os.fspath(path)
    fd, tmp_name = _create_temp(target.rpartition("/")[0] or ".")
    try:
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        # Straight to the file descriptor: chunks are large already, a buffer adds only a copy.
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
            digest.update(chunk)
            size += len(chunk)
        # Setting an attribute or the mode changes the ctime only, so this mtime stays true.
        st = os.fstat(fd)
        mtime_ns = st.st_mtime_ns
        if st.st_mode & 0o777 != _MODE:
            # An ordinary file's mode, not mkstemp's 0600: an OSCAR service's sandboxed script
            # reads its mounted bucket folder under a uid of its own. The data directory (0700)
            # keeps everyone else out. Created so, unless the umask took some of it away.
            os.fchmod(fd, _MODE)
        written = Written(size=size, md5_hex=digest.hexdigest(), mtime_ns=mtime_ns)
        if tag is not None:
            try:
                os.setxattr(fd, XATTR, tag(written))
                written = Written(size, written.md5_hex, mtime_ns, tagged=True)
            except OSError as exc:
                if exc.errno not in _NO_XATTR:
                    raise
    except BaseException:
        discard(Staged(fd, tmp_name, target, Written(0, "", 0)))
        raise
    return Staged(fd, tmp_name, target, written, st.st_dev)


def commit_files(
    staged: list[Staged], *, durable: bool = True, flusher: Flusher | None = None
) -> list[Written | OSError]:
    """Make every staged file durable, then rename each into place: one outcome per file, in
    order (its :class:`Written`, or the error that left its destination as it was).

    All the flushes come after all the writes, and a group is flushed together (``flusher``,
    see :mod:`.flush`): where a write-and-fsync per file paid a disk commit each. A rename never
    becomes visible before the data it points at is on disk."""
    out: list[Written | OSError] = []
    try:
        if durable:
            flushed = (flusher or DEFAULT_FLUSHER).flush(
                [s.fd for s in staged], [s.dev for s in staged]
            )
        else:
            flushed = [None] * len(staged)
        for s, error in zip(staged, flushed, strict=True):
            out.append(s.written if error is None else error)
        for i, s in enumerate(staged):
            try:
                os.close(s.fd)
            except OSError as exc:
                if not isinstance(out[i], OSError):
                    out[i] = exc
            s.fd = -1
            if isinstance(out[i], OSError):
                discard(s)
                continue
            try:
                os.replace(s.temp, s.target)
            except OSError as exc:
                out[i] = exc
                discard(s)
    except BaseException:  # interrupted: nothing half-done stays behind
        for s in staged:
            if s.fd >= 0:
                discard(s)
        raise
    return out


def discard(staged: Staged) -> None:
    """Remove a staged file that will not be committed."""
    if staged.fd >= 0:
        with contextlib.suppress(OSError):
            os.close(staged.fd)
        staged.fd = -1
    with contextlib.suppress(FileNotFoundError):
        os.unlink(staged.temp)


_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_MODE = 0o644


def _create_temp(folder: str) -> tuple[int, str]:
    """A new temporary file in ``folder`` named as :func:`is_temp_name` expects: what
    ``tempfile.mkstemp`` does, without its per-call overhead (its name generator and path
    handling were a tenth of a small object's write)."""
    for _ in range(100):
        # 8 hex digits: within mkstemp's alphabet, which is what is_temp_name recognises.
        path = f"{folder}/{_TEMP_PREFIX}{os.urandom(4).hex()}{_TEMP_SUFFIX}"
        try:
            return os.open(path, _TEMP_FLAGS, _MODE), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", folder)
