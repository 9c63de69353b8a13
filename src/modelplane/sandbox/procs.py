"""Finding a sandboxed process by the pid it has inside its own pid namespace.

A template forks replicas inside its sandbox, where pids are the namespace's own (2, 3, ...); the
platform signals and measures them by their host pid, found here among the template's descendants
through ``/proc/<pid>/task/<pid>/children`` and the ``NSpid`` line of each one's status.
"""

from __future__ import annotations


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
