"""The platform's side of a warm template (see :mod:`modelplane.worker.template`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from typing import Any

from modelplane.backends.base import LogLine, ReplicaHandle, ReplicaLaunch
from modelplane.procs import host_pid
from modelplane.sandbox import Sandbox
from modelplane.spec import DeploymentSpec

DRAIN = 30.0
"""Seconds a sandboxed template outlives its last replicas at most: its pid namespace is theirs,
so stopping it stops them (the reconciler drains replicas well within this)."""


class TemplateFailed(Exception):
    pass


class Template:
    """One template process for one deployment generation."""

    def __init__(
        self,
        key: str,
        spec: DeploymentSpec,
        env: dict[str, str],
        log: LogLine,
        python: str = sys.executable,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.key = key
        self.deployment = spec.name
        self._spec = spec
        self._env = env
        self._log = log
        self._python = python
        self._sandbox = sandbox
        self._proc: asyncio.subprocess.Process | None = None
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._ready: asyncio.Future[None] | None = None
        self._spawned: dict[str, asyncio.Future[int]] = {}
        self._exits: dict[str, asyncio.Future[int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.pid: int | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        spec = self._spec
        args = [
            self._python,
            "-m",
            "modelplane.worker.template",
            "--control-fd",
            str(theirs.fileno()),
            "--model-path",
            spec.model.path,
        ]
        if spec.model.entrypoint:
            args += ["--entrypoint", spec.model.entrypoint]
        args += ["--loader", spec.model.loader]
        env = self._env
        if self._sandbox is not None:
            args, env = self._sandbox.confine(spec, args, env, python=self._python)
        self._proc = await asyncio.create_subprocess_exec(
            *args,
            pass_fds=(theirs.fileno(),),
            env=env,
            cwd=spec.model.path,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        theirs.close()
        self.pid = self._proc.pid
        ours.setblocking(False)
        self._sock = ours
        self._ready = loop.create_future()
        loop.add_reader(ours.fileno(), self._on_readable)
        self._keep(self._pump_output())
        await self._ready

    def _keep(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pump_output(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            self._log(self.deployment, "template", line.decode("utf-8", "replace").rstrip("\n"))

    def _on_readable(self) -> None:
        assert self._sock is not None
        try:
            data = self._sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._gone("the template process exited")
            return
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            self._on_event(json.loads(line))

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "ready" and self._ready and not self._ready.done():
            self._ready.set_result(None)
        elif kind == "import_failed" and self._ready and not self._ready.done():
            self._ready.set_exception(TemplateFailed(str(event.get("error"))))
        elif kind == "spawned":
            fut = self._spawned.pop(str(event["replica_id"]), None)
            if fut is not None and not fut.done():
                fut.set_result(int(event["pid"]))
        elif kind == "exited":
            fut = self._exits.pop(str(event["replica_id"]), None)
            if fut is not None and not fut.done():
                fut.set_result(int(event["code"]))

    def _gone(self, reason: str) -> None:
        if self._sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        if self._ready and not self._ready.done():
            self._ready.set_exception(TemplateFailed(reason))
        for fut in self._spawned.values():
            if not fut.done():
                fut.set_exception(TemplateFailed(reason))
        self._spawned.clear()
        # Replicas outlive their template; without it to reap them, watch them by pidfd.
        for fut in self._exits.values():
            pid = getattr(fut, "pid", None)
            if pid is not None and not fut.done():
                watch_pid(pid, fut)
        self._exits.clear()

    @property
    def alive(self) -> bool:
        return self._sock is not None

    async def spawn(self, launch: ReplicaLaunch, on_line: LogLine) -> ReplicaHandle:
        """Fork a replica; its output arrives on a pipe of its own."""
        if self._sock is None:
            raise TemplateFailed("template is not running")
        loop = asyncio.get_running_loop()
        read_fd, write_fd = os.pipe()
        connect, env = launch.gateway_address, launch.env
        if self._sandbox is not None:
            connect = self._sandbox.gateway_address(connect)
            env = self._sandbox.launch_env(env)
        message = {
            "op": "spawn",
            "replica_id": launch.replica_id,
            "deployment": launch.spec.name,
            "connect": connect,
            "model_path": launch.spec.model.path,
            "entrypoint": launch.spec.model.entrypoint,
            "loader": launch.spec.model.loader,
            "env": env,
        }
        spawned: asyncio.Future[int] = loop.create_future()
        exited: asyncio.Future[int] = loop.create_future()
        self._spawned[launch.replica_id] = spawned
        self._exits[launch.replica_id] = exited
        try:
            socket.send_fds(self._sock, [json.dumps(message).encode() + b"\n"], [write_fd])
        finally:
            os.close(write_fd)
        try:
            pid = await asyncio.wait_for(spawned, 10)
        except BaseException:
            os.close(read_fd)
            self._exits.pop(launch.replica_id, None)
            raise
        if self._sandbox is not None and self._proc is not None:
            # The template saw its child's pid in its own namespace; ours is another number.
            found = host_pid(self._proc.pid, pid)
            if found is None:
                raise TemplateFailed(f"forked replica (pid {pid} in its sandbox) vanished")
            pid = found
        exited.pid = pid  # type: ignore[attr-defined]
        self._keep(self._pump_replica(read_fd, launch, on_line))
        return ReplicaHandle(launch.replica_id, launch.spec.name, pid, exited)

    async def _pump_replica(self, fd: int, launch: ReplicaLaunch, on_line: LogLine) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0)
        )
        try:
            while line := await reader.readline():
                on_line(
                    launch.spec.name,
                    launch.replica_id,
                    line.decode("utf-8", "replace").rstrip("\n"),
                )
        finally:
            transport.close()

    async def close(self) -> None:
        if self._sandbox is not None and self._exits:
            await asyncio.wait(list(self._exits.values()), timeout=DRAIN)
        self._gone("template stopped")
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGKILL)
            await self._proc.wait()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)


def watch_pid(pid: int, fut: asyncio.Future[int]) -> None:
    """Resolve ``fut`` when ``pid`` (not our child) exits; its exit code is unknown (-1)."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        if not fut.done():
            fut.set_result(-1)
        return

    def on_exit() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        if not fut.done():
            fut.set_result(-1)

    loop.add_reader(fd, on_exit)
