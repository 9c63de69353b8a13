"""What runs on a Ray node: the replica's host actor and the warm template's host actor.

Neither carries predictions: a replica dials the platform's gateway over TCP and speaks the same
frames as on one machine. A replica dies with the actor that started it: a spawned one by
PR_SET_PDEATHSIG, a forked one by watching that actor's pid (``MODELPLANE_DIE_WITH``), so a lost
node or a killed actor never leaves a replica serving on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from typing import Any

from modelplane.worker.main import DIE_WITH_ENV

_PR_SET_PDEATHSIG = 1
TAIL = 50


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _where() -> dict[str, Any]:
    import ray

    ctx = ray.get_runtime_context()
    return {
        "node_id": ctx.get_node_id(),
        "address": ray.util.get_node_ip_address(),
        "pid": os.getpid(),
        "gpus": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
    }


def _rss(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


async def _terminate(pid: int, exited: asyncio.Future[Any], grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(exited), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class ReplicaHost:
    """Holds a replica's resources (Ray placed it where they are free) and, on the cold path,
    runs the replica as a fresh interpreter (async actor: calls interleave)."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.tail: list[str] = []
        self._done: asyncio.Future[int] | None = None

    def where(self) -> dict[str, Any]:
        return _where()

    async def spawn(self, args: list[str], env: dict[str, str], cwd: str) -> int:
        """Start the replica as a fresh interpreter; its pid on this node."""
        # Ray set CUDA_VISIBLE_DEVICES for this actor to the GPUs it granted: pass them on.
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **env},
            cwd=cwd,
            preexec_fn=_die_with_parent,
        )
        self._done = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().create_task(self._pump())
        return self.proc.pid

    async def _pump(self) -> None:
        proc, done = self.proc, self._done
        assert proc is not None and proc.stdout is not None and done is not None
        while line := await proc.stdout.readline():
            self.tail.append(line.decode("utf-8", "replace").rstrip("\n"))
            del self.tail[:-200]
        done.set_result(await proc.wait())

    async def wait(self) -> dict[str, Any]:
        """Until the spawned replica exits: ``{"code", "tail"}`` (its last lines)."""
        assert self._done is not None
        return {"code": await asyncio.shield(self._done), "tail": self.tail[-TAIL:]}

    async def stop(self, grace: float) -> None:
        if self.proc is not None and self._done is not None and not self._done.done():
            await _terminate(self.proc.pid, self._done, grace)

    def rss(self) -> int | None:
        alive = self.proc is not None and self.proc.returncode is None
        return _rss(self.proc.pid) if alive and self.proc else None


class TemplateHost:
    """A warm template on one node for one deployment generation: the same template process as
    on one machine (imports done, no weights loaded), forking replicas on request."""

    def __init__(self) -> None:
        self._template: Any = None
        self._replicas: dict[str, Any] = {}
        self._tails: dict[str, list[str]] = {}

    def where(self) -> dict[str, Any]:
        return _where()

    async def start(self, spec: Any, env: dict[str, str]) -> str | None:
        """Start the template process; None once it has imported the model, else why not."""
        from modelplane.backends.local.forkserver import Template, TemplateFailed

        def log(_deployment: str, source: str, line: str) -> None:
            if source == "template":
                self._tails.setdefault("", []).append(line)
                del self._tails[""][:-200]

        template = Template(f"{spec.name}@{os.getpid()}", spec, {**os.environ, **env}, log)
        try:
            await template.start()
        except TemplateFailed as exc:
            await template.close()
            return str(exc)
        self._template = template
        return None

    async def spawn(self, launch: Any, owner_pid: int | None) -> int:
        """Fork one replica; it dies with the actor ``owner_pid`` (the one holding its
        resources on this node), and with this one."""
        from dataclasses import replace

        def on_line(_deployment: str, replica_id: str, line: str) -> None:
            tail = self._tails.setdefault(replica_id, [])
            tail.append(line)
            del tail[:-200]

        owners = [os.getpid()] if owner_pid is None else [owner_pid, os.getpid()]
        env = {**launch.env, DIE_WITH_ENV: ",".join(map(str, owners))}
        handle = await self._template.spawn(replace(launch, env=env), on_line)
        self._replicas[launch.replica_id] = handle
        return int(handle.pid)

    async def wait(self, replica_id: str) -> dict[str, Any]:
        """Until that replica exits: ``{"code", "tail"}``."""
        handle = self._replicas[replica_id]
        code = await asyncio.shield(handle.exited)
        self._replicas.pop(replica_id, None)
        return {"code": code, "tail": self._tails.pop(replica_id, [])[-TAIL:]}

    async def stop(self, replica_id: str, grace: float) -> None:
        handle = self._replicas.get(replica_id)
        if handle is not None and not handle.exited.done():
            await _terminate(handle.pid, handle.exited, grace)

    def rss(self, replica_id: str) -> int | None:
        handle = self._replicas.get(replica_id)
        return _rss(handle.pid) if handle is not None and not handle.exited.done() else None

    async def until_lost(self) -> str:
        """Returns (why) when the template process has gone; Ray errors if this actor has."""
        while self._template is not None and self._template.alive:
            await asyncio.sleep(1.0)
        return "the template process exited"
