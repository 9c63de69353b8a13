"""Replicas as worker processes started by the platform.

Each replica's stdout and stderr are read line by line and handed to the log sink, so
``modelplane logs`` shows the model's own output and its load errors. Replicas run in their own
session, so a signal aimed at one never reaches the platform.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

from modelplane.backends.base import LogLine, ReplicaHandle, ReplicaLaunch

_PAGE = os.sysconf("SC_PAGE_SIZE")


class LocalProcessBackend:
    def __init__(self, log: LogLine, base_env: dict[str, str] | None = None,
                 python: str = sys.executable) -> None:
        self._log = log
        self._base_env = dict(os.environ if base_env is None else base_env)
        self._python = python
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, launch: ReplicaLaunch) -> ReplicaHandle:
        spec = launch.spec
        env = {**self._base_env, **spec.env, **launch.env, "PYTHONUNBUFFERED": "1"}
        args = [
            self._python, "-m", "modelplane.worker",
            "--connect", launch.gateway_address,
            "--replica-id", launch.replica_id,
            "--deployment", spec.name,
            "--model-path", spec.model.path,
        ]
        if spec.model.entrypoint:
            args += ["--entrypoint", spec.model.entrypoint]
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=spec.model.path,
            start_new_session=True,
        )
        self._procs[launch.replica_id] = proc
        exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._watch(proc, launch, exited))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return ReplicaHandle(launch.replica_id, spec.name, proc.pid, exited)

    async def _watch(self, proc: asyncio.subprocess.Process, launch: ReplicaLaunch,
                     exited: asyncio.Future[int]) -> None:
        assert proc.stdout is not None
        name = launch.spec.name
        try:
            while True:
                line = await proc.stdout.readline()
                if not line:
                    break
                self._log(name, launch.replica_id, line.decode("utf-8", "replace").rstrip("\n"))
        finally:
            code = await proc.wait()
            self._procs.pop(launch.replica_id, None)
            if not exited.done():
                exited.set_result(code)

    async def stop(self, handle: ReplicaHandle, grace: float = 5.0) -> None:
        proc = self._procs.get(handle.replica_id)
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(handle.exited), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await handle.exited

    def memory_bytes(self, handle: ReplicaHandle) -> int | None:
        if handle.pid is None or handle.exited.done():
            return None
        try:
            with open(f"/proc/{handle.pid}/statm", "rb") as f:
                return int(f.read().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            return None

    async def close(self) -> None:
        procs = list(self._procs.values())
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        for proc in procs:
            await proc.wait()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
