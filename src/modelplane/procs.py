"""Process trees from ``/proc``: a sandboxed process by the pid it has inside its own pid
namespace, and a tree's resident memory. No import of ours: a training's gateway half uses it
inside a model's own environment (``modelplane run``) too.

A template forks replicas inside its sandbox, where pids are the namespace's own (2, 3, ...); the
platform signals and measures them by their host pid, found here among the template's descendants
through ``/proc/<pid>/task/<pid>/children`` and the ``NSpid`` line of each one's status.
"""

from __future__ import annotations

import os

_PAGE = os.sysconf("SC_PAGE_SIZE")


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return []


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = children(pid)
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children(p))
    return found


def ns_pid(pid: int) -> int | None:
    """The pid ``pid`` has in its innermost pid namespace."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def host_pid(root: int, inner: int) -> int | None:
    """The host pid of the descendant of ``root`` whose innermost pid is ``inner``."""
    for p in descendants(root):
        if ns_pid(p) == inner:
            return p
    return None


def resident_bytes(pid: int, *, tree: bool = False) -> int | None:
    """Resident memory of ``pid`` (with ``tree``, of it and every descendant: a sandbox's
    processes), or None if none of them can be read any more."""
    total = None
    for p in [pid, *(descendants(pid) if tree else [])]:
        try:
            with open(f"/proc/{p}/statm", "rb") as f:
                total = (total or 0) + int(f.read().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            continue
    return total
