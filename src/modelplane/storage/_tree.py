"""The ordered walk of a bucket folder that backs the local store's listings.

Listing must return keys sorted by code point (S3's order) and stop early at a limit or skip ahead
to a cursor, without reading a whole bucket each time a watcher polls. :func:`walk_objects`
produces keys lazily in exactly that order, pruning folders that cannot hold a wanted key.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from modelplane.errors import InvalidInput
from modelplane.storage._files import is_temp_name
from modelplane.storage.keys import validate_key

__all__ = ["walk_objects"]


def walk_objects(
    bucket_dir: Path, prefix: str, start_after: str | None
) -> Iterator[tuple[str, Path, os.stat_result]]:
    """Yield ``(key, path, stat)`` for objects under ``bucket_dir``, in key order, lazily.

    Only keys starting with ``prefix`` and greater than ``start_after`` (if given) are yielded.
    Symbolic links, our temporary files and files whose names no valid key can address (dropped
    in by hand) are not objects and are skipped; so are folders reached only through links.
    """
    return _walk(bucket_dir, "", prefix, start_after)


def _walk(
    folder: Path, rel: str, prefix: str, start_after: str | None
) -> Iterator[tuple[str, Path, os.stat_result]]:
    """Yield the objects under ``folder``, whose keys start with ``rel``.

    Sorting a folder's entries by name, with ``/`` appended to folder names, makes a
    depth-first walk produce keys in exactly code-point order, so a listing can stop at
    ``limit`` and skip whole folders that sort before the cursor or outside the prefix.
    """
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return  # pruned by a concurrent delete
    ordered = []
    for entry in entries:
        if entry.is_symlink() or is_temp_name(entry.name):
            continue
        if entry.is_dir(follow_symlinks=False):
            ordered.append((rel + entry.name + "/", entry, True))
        elif entry.is_file(follow_symlinks=False):
            ordered.append((rel + entry.name, entry, False))
    ordered.sort(key=lambda item: item[0])
    for name, entry, is_dir in ordered:
        if is_dir:
            if not (name.startswith(prefix) or prefix.startswith(name)):
                continue
            if start_after is not None and start_after > name and not start_after.startswith(name):
                continue  # every key in here sorts before the cursor
            yield from _walk(Path(entry.path), name, prefix, start_after)
            continue
        if not name.startswith(prefix) or (start_after is not None and name <= start_after):
            continue
        if not _is_key(name):
            continue  # a file no key can address (dropped in by hand); not an object
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # deleted while we walked
        yield name, Path(entry.path), st


def _is_key(name: str) -> bool:
    try:
        validate_key(name)
    except InvalidInput:
        return False
    return True
