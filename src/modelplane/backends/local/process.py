"""Replicas as worker processes on this machine.

By default a replica is forked from its deployment's warm template (see
:mod:`modelplane.worker.template`): milliseconds instead of a fresh interpreter's import time.
With ``scale.warm_template: false``, or if the template cannot import the model's code, a replica
is a freshly spawned interpreter instead.

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
from pathlib import Path
from typing import Any

from modelplane.backends.base import LogLine, ReplicaHandle, ReplicaLaunch
from modelplane.backends.local.forkserver import Template, TemplateFailed
from modelplane.envs import EnvManager
from modelplane.errors import EnvironmentFailed
from modelplane.procs import resident_bytes
from modelplane.sandbox import Sandbox
from modelplane.spec import DeploymentSpec
from modelplane.worker.main import SECRET_ENV


async def interpreter(
    envs: EnvManager | None, default: str, spec: DeploymentSpec
) -> tuple[str, dict[str, str]]:
    """The interpreter for the spec's model code (its own environment's, if it has one), and
    what to change in that code's environment. Replicas and trainings alike."""
    if envs is None:
        return default, {}
    python = await envs.python_for(spec.model.path)
    if python is None:
        return default, {}
    # The platform's own paths must not leak into the model's interpreter.
    return python, {"PYTHONPATH": "", "VIRTUAL_ENV": str(Path(python).parent.parent)}


def process_env(
    base_env: dict[str, str], spec: DeploymentSpec, extra: dict[str, str]
) -> dict[str, str]:
    """The environment model code starts with, unconfined (a sandbox rebuilds it, without
    ``base_env``): the platform's, the spec's, then ``extra``."""
    env = {**base_env, **spec.env, **extra, "PYTHONUNBUFFERED": "1"}
    return {k: v for k, v in env.items() if v != "" or k not in ("PYTHONPATH",)}


class LocalProcessBackend:
    def __init__(
        self,
        log: LogLine,
        base_env: dict[str, str] | None = None,
        python: str = sys.executable,
        envs: EnvManager | None = None,
        sandbox: Sandbox | None = None,
    ) -> None:
        """``sandbox``: confine every template and replica (see :mod:`modelplane.sandbox`);
        their environment is then the spec's and the launch's only, never ``base_env``."""
        self._log = log
        self.envs = envs
        self._sandbox = sandbox
        self._base_env = dict(os.environ if base_env is None else base_env)
        if sandbox is not None:
            self._base_env = {}
        self._python_default = python
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._forked: dict[str, ReplicaHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._templates: dict[str, Template] = {}
        self._template_starts: dict[str, asyncio.Task[Template | None]] = {}
        self._wrapped: set[str] = set()
        """Spawned replicas whose pid is their sandbox's (bwrap's): measured as a process tree."""

    # -- templates ------------------------------------------------------------------------------
    @staticmethod
    def _key(spec: DeploymentSpec) -> str:
        return spec.model_dump_json()

    # -- the model's own environment ------------------------------------------------------------
    def environment(self, spec: DeploymentSpec) -> dict[str, Any] | None:
        if self.envs is None:
            return None
        state = self.envs.state(spec.model.path)
        return state.to_dict() if state is not None else None

    async def _python(self, spec: DeploymentSpec) -> tuple[str, dict[str, str]]:
        return await interpreter(self.envs, self._python_default, spec)

    def _process_env(self, spec: DeploymentSpec, extra: dict[str, str]) -> dict[str, str]:
        return process_env(self._base_env, spec, extra)

    async def prepare(self, spec: DeploymentSpec) -> Template | None:
        """Start (once) the warm template for this spec; None if it cannot import the model.

        A model folder with requirements gets its environment built first (see envs/).
        """
        if self.envs is not None:
            self.envs.retry(spec.model.path)  # a deploy or an update tries a failed build again
            try:
                await self._python(spec)
            except EnvironmentFailed:
                return None  # status shows it; no replica can start
        return await self._template(spec)

    async def _template(self, spec: DeploymentSpec) -> Template | None:
        if not spec.scale.warm_template:
            return None
        key = self._key(spec)
        template = self._templates.get(key)
        if template is not None and template.alive:
            return template
        task = self._template_starts.get(key)
        if task is None:
            task = asyncio.create_task(self._start_template(key, spec))
            self._template_starts[key] = task
        return await asyncio.shield(task)

    async def _start_template(self, key: str, spec: DeploymentSpec) -> Template | None:
        python, extra = await self._python(spec)
        env = self._process_env(spec, extra)
        template = Template(key, spec, env, self._log, python, self._sandbox)
        try:
            await template.start()
        except TemplateFailed as exc:
            self._log(
                spec.name,
                "platform",
                f"warm template unavailable ({exc}); replicas start as fresh processes",
            )
            await template.close()
            return None
        finally:
            self._template_starts.pop(key, None)
        self._templates[key] = template
        return template

    async def release(self, deployment: str, keep: DeploymentSpec | None = None) -> None:
        """Stop the templates of ``deployment`` except the one for spec ``keep``."""
        keep_key = self._key(keep) if keep is not None else None
        for key, template in list(self._templates.items()):
            if template.deployment == deployment and key != keep_key:
                del self._templates[key]
                await template.close()

    # -- replicas -------------------------------------------------------------------------------
    async def start(self, launch: ReplicaLaunch) -> ReplicaHandle:
        template = await self._template(launch.spec)
        if template is not None:
            try:
                handle = await template.spawn(launch, self._log)
            except TemplateFailed:
                pass
            else:
                self._forked[launch.replica_id] = handle
                handle.exited.add_done_callback(
                    lambda _f: self._forked.pop(launch.replica_id, None)
                )
                return handle
        return await self._spawn(launch)

    async def _spawn(self, launch: ReplicaLaunch) -> ReplicaHandle:
        spec = launch.spec
        python, extra = await self._python(spec)
        env = self._process_env(spec, {**launch.env, **extra})
        connect = launch.gateway_address
        if self._sandbox is not None:
            connect = self._sandbox.gateway_address(connect)
        args = [
            python,
            "-m",
            "modelplane.worker",
            "--connect",
            connect,
            "--replica-id",
            launch.replica_id,
            "--deployment",
            spec.name,
            "--model-path",
            spec.model.path,
        ]
        if spec.model.entrypoint:
            args += ["--entrypoint", spec.model.entrypoint]
        args += ["--loader", spec.model.loader]
        # The replica's secret goes down an inherited pipe, not its environment: an environment
        # stays readable in /proc/<pid>/environ for the process's whole life (the bwrap process's
        # on the host included); the pipe is read and closed before the model loads.
        secret = env.pop(SECRET_ENV, "")
        secret_r = -1
        if secret:
            secret_r, secret_w = os.pipe()
            try:
                os.write(secret_w, secret.encode())
            finally:
                os.close(secret_w)
            args += ["--secret-fd", str(secret_r)]
        if self._sandbox is not None:
            args, env = self._sandbox.confine(spec, args, env, python=python)
        try:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                cwd=spec.model.path,
                start_new_session=True,
                pass_fds=(secret_r,) if secret else (),
            )
        finally:
            if secret:
                os.close(secret_r)
        self._procs[launch.replica_id] = proc
        exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._watch(proc, launch, exited))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        handle = ReplicaHandle(launch.replica_id, spec.name, proc.pid, exited)
        if self._sandbox is not None:
            self._wrapped.add(launch.replica_id)
            exited.add_done_callback(lambda _f: self._wrapped.discard(launch.replica_id))
        return handle

    async def _watch(
        self, proc: asyncio.subprocess.Process, launch: ReplicaLaunch, exited: asyncio.Future[int]
    ) -> None:
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
        if handle.exited.done() or handle.pid is None:
            return
        if grace > 0:
            try:
                await asyncio.wait_for(asyncio.shield(handle.exited), grace)
                return
            except TimeoutError:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.kill(handle.pid, signal.SIGKILL)
        await handle.exited

    def memory_bytes(self, handle: ReplicaHandle) -> int | None:
        if handle.pid is None or handle.exited.done():
            return None
        return resident_bytes(handle.pid, tree=handle.replica_id in self._wrapped)

    async def close(self) -> None:
        procs = list(self._procs.values())
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        forked = list(self._forked.values())
        for handle in forked:
            if handle.pid is not None and not handle.exited.done():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(handle.pid, signal.SIGKILL)
        for proc in procs:
            await proc.wait()
        if forked:
            await asyncio.wait([h.exited for h in forked], timeout=5)
        for template in list(self._templates.values()):
            await template.close()
        self._templates.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
