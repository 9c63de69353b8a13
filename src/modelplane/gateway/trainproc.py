"""A training's process as the platform sees it from outside: alive or not, how big, how to stop
it, and what it wrote about itself (read as untrusted input).

A confined training's pid is a subshell holding its bubblewrap process (see
:data:`modelplane.sandbox.bubblewrap.HOLDER`); killing that subshell kills the sandbox and every
process in it. A stop asks the model's own processes inside first. An unconfined training is a
process group of its own (``start_new_session``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
from pathlib import Path
from typing import Any

import orjson

from modelplane.procs import descendants, resident_bytes

__all__ = [
    "alive",
    "read_from",
    "read_untrusted",
    "resident_bytes",
    "signal_all",
    "start_time",
    "stop_all",
]

MAX_RECORD = 16 * 2**20
"""Largest record a training may write about itself that the platform reads back."""
_STATUSES = ("starting", "running", "done", "error", "invalid")
_MARK = b"modelplane.worker.train"


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot): with the pid, names one process for good."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[-1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: Any, started: Any = None) -> bool:
    """``pid`` is still the training process it was (not a zombie, not a recycled pid).

    With its start time known, pid and start time name the process; its command line is not
    looked at (it is empty for a moment while the process is exec'ing). Without it (a record
    from before start times were kept), the command line must be a training's.
    """
    if not isinstance(pid, int):
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[-1].split()
        if not isinstance(started, int):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if _MARK not in f.read():
                    return False
    except OSError:
        return False
    if isinstance(started, int) and fields[19:20] != [str(started).encode()]:
        return False
    return fields[0] != b"Z"


def signal_all(pid: int, *, kill: bool, confined: bool) -> None:
    """Stop (SIGTERM) or kill (SIGKILL) a training: see the module's docstring."""
    if pid <= 1:  # never 0 or -1 (a process group, every process) or init
        return
    sig = signal.SIGKILL if kill else signal.SIGTERM
    inside = descendants(pid)
    if confined and not kill:
        # The model's processes only: bwrap, or the shell holding it, would end the sandbox at
        # once (a SIGKILL to everything inside), leaving the model no time to stop cleanly.
        targets = [p for p in inside if _comm(p) not in (b"bwrap", b"sh")]
    else:
        targets = [pid, *inside]
    if not confined:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
    for p in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, sig)


def _comm(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().strip()
    except OSError:
        return b""


async def stop_all(pid: int, started: Any, *, confined: bool, grace: float = 5.0) -> None:
    """Ask the training to stop, give it ``grace`` seconds, then kill what is left."""
    signal_all(pid, kill=False, confined=confined)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while alive(pid, started) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    if alive(pid, started):
        signal_all(pid, kill=True, confined=confined)


def read_from(path: Path, offset: int, limit: int = 2**20) -> bytes:
    """Up to ``limit`` bytes of the file at ``path`` from ``offset`` on (a training's log, which
    it writes itself: as :func:`read_untrusted`, no link is followed and no FIFO waited on)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        return os.pread(fd, limit, offset)
    except OSError:
        return b""
    finally:
        os.close(fd)


def read_untrusted(path: Path, limit: int = MAX_RECORD) -> dict[str, Any]:
    """What a training wrote about itself that the platform shows: its status, arguments,
    result and messages, nothing else. The model's code may have written anything there, or a
    symbolic link, a FIFO or a huge file instead: none is followed, waited on or read whole."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return {}
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    except OSError:
        return {}
    finally:
        os.close(fd)
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {}
    if raw.get("status") in _STATUSES:
        out["status"] = raw["status"]
    if isinstance(raw.get("args"), dict):
        out["args"] = raw["args"]
    if "result" in raw:
        out["result"] = raw["result"]
    if isinstance(raw.get("message"), str):
        out["message"] = raw["message"]
    if isinstance(raw.get("messages"), dict | list):
        out["messages"] = raw["messages"]
    return out
