"""The replica's host on a Ray node: an actor that runs the ordinary worker program.

The actor only starts the replica process and reports on it; predictions never pass through Ray:
the replica dials the platform's gateway over TCP and speaks the same frames as on one machine.
The replica dies with its actor (PR_SET_PDEATHSIG), so a lost node or a killed actor never leaves
a replica serving on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from typing import Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ReplicaHost:
    """Instantiated by Ray on the node it chose (see ``RayBackend``); async: calls interleave."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.tail: list[str] = []

    def where(self) -> dict[str, Any]:
        import ray

        ctx = ray.get_runtime_context()
        return {
            "node_id": ctx.get_node_id(),
            "address": ray.util.get_node_ip_address(),
            "pid": os.getpid(),
            "gpus": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        }

    async def run(self, args: list[str], env: dict[str, str], cwd: str) -> dict[str, Any]:
        """Start the replica and wait for it to exit: ``{"code", "tail"}`` (its last lines)."""
        # Ray set CUDA_VISIBLE_DEVICES for this actor to the GPUs it granted: pass them on.
        full = {**os.environ, **env}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=full,
            cwd=cwd,
            preexec_fn=_die_with_parent,
        )
        assert self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                break
            self.tail.append(line.decode("utf-8", "replace").rstrip("\n"))
            del self.tail[:-200]
        return {"code": await self.proc.wait(), "tail": self.tail[-50:]}

    async def stop(self, grace: float) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    def rss(self) -> int | None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return None
        try:
            with open(f"/proc/{proc.pid}/statm", "rb") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return None
