"""DEEPaaS training on the gateway side: ``/v2/models/{name}/train/`` as DEEPaaS 2.6 answers it.

Each ``POST`` starts a process of its own (:mod:`modelplane.worker.train`) with the deployment's
interpreter, folder and environment, never a serving replica, and waits only until it has read
the arguments (``422`` with webargs' messages if they are wrong). Trainings are records on disk,
one JSON file each, written by the training process itself, so they outlive the platform: listed
by ``GET train/``, shown by ``GET train/{uuid}``, cancelled (process group killed) and forgotten
by ``DELETE``, as DEEPaaS does.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import re
import signal
import tempfile
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from modelplane.errors import ModelplaneError, NotFound
from modelplane.gateway.http import HttpConnection, Request
from modelplane.worker.train import DATE, write_record

_JSON = b"application/json; charset=utf-8"
_UUID = re.compile(r"^[0-9a-f]{32}$")
LogLine = Callable[[str, str, str], None]


@dataclass(frozen=True)
class TrainTarget:
    """How to start a deployment's training process."""

    python: str
    model_path: str
    entrypoint: str | None
    loader: str
    env: dict[str, str] = field(default_factory=dict)
    model_name: str | None = None
    """The DEEPaaS name of the module, when known: other names are 404."""


class TrainingBook:
    """Trainings of every deployment under ``root/{deployment}/{uuid}.json``."""

    def __init__(self, root: Path, target: Callable[[str], Any], log: LogLine | None = None):
        self.root = root
        self._target = target
        self._log = log
        self._tasks: set[asyncio.Task[None]] = set()

    # -- records -------------------------------------------------------------------------------
    def _folder(self, deployment: str) -> Path:
        folder = self.root / deployment
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if record.get("status") in ("running", "starting") and not _alive(record.get("pid")):
            if record.get("status") == "starting" and record.get("pid") is None:
                return record
            record.update(
                status="error",
                message="the training process ended without a result (it was killed, or the "
                "machine restarted)",
            )
            write_record(path, record)
        return record

    @staticmethod
    def response(record: dict[str, Any]) -> dict[str, Any]:
        """DEEPaaS's training document: date, args, uuid, status, and result or message."""
        out: dict[str, Any] = {
            k: record[k] for k in ("date", "args", "uuid", "status") if k in record
        }
        if record.get("status") == "starting":
            out["status"] = "running"
        if "message" in record and record.get("status") == "error":
            out["message"] = record["message"]
        if record.get("status") == "done":
            out["result"] = record.get("result")
        return out

    def records(self, deployment: str) -> list[dict[str, Any]]:
        found = []
        for path in sorted(self._folder(deployment).glob("*.json"), key=os.path.getmtime):
            record = self._read(path)
            if record is not None and record.get("status") != "invalid":
                found.append(record)
        return found

    # -- the routes ----------------------------------------------------------------------------
    def handle(
        self, deployment: str, op: str, name: str, uid: str, req: Request, conn: HttpConnection
    ) -> None:
        task = asyncio.get_running_loop().create_task(
            self._answer(deployment, op, name, uid, req, conn)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(
        self, deployment: str, op: str, name: str, uid: str, req: Request, conn: HttpConnection
    ) -> None:
        try:
            target = self._target(deployment)
            if asyncio.isfuture(target) or asyncio.iscoroutine(target):
                target = await target
            if target.model_name is not None and name != target.model_name:
                raise NotFound(
                    f"no DEEPaaS model {name!r} here; this deployment serves {target.model_name!r}"
                )
            if op == "start":
                status, body = await self._start(deployment, target, req)
            elif op == "list":
                status, body = 200, [self.response(r) for r in self.records(deployment)]
            else:
                path = self._folder(deployment) / f"{uid}.json"
                record = self._read(path) if _UUID.match(uid) else None
                if record is None or record.get("status") == "invalid":
                    conn.respond(404, b"404: Not Found", b"text/plain; charset=utf-8")
                    return
                if op == "cancel":
                    record = await self._cancel(path, record)
                status, body = 200, self.response(record)
        except ModelplaneError as exc:
            conn.respond_error(exc)
            return
        conn.respond(status, orjson.dumps(body), _JSON)

    async def _start(self, deployment: str, target: TrainTarget, req: Request) -> tuple[int, Any]:
        uid = uuidlib.uuid4().hex
        folder = self._folder(deployment)
        path = folder / f"{uid}.json"
        write_record(
            path,
            {"uuid": uid, "date": datetime.datetime.now().strftime(DATE), "status": "starting"},
        )
        fd, body_file = tempfile.mkstemp(dir=folder, prefix=f".{uid}.", suffix=".body")
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(req.body))
        query = req.url.partition(b"?")[2].decode("latin-1")
        args = [target.python, "-m", "modelplane.worker.train", "--record", str(path)]
        args += ["--model-path", target.model_path, "--loader", target.loader]
        args += ["--content-type", req.content_type.decode("latin-1") if req.content_type else ""]
        args += ["--query", query, "--body", body_file]
        if target.entrypoint:
            args += ["--entrypoint", target.entrypoint]
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=target.model_path,
            env={**target.env, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # it outlives a platform restart
        )
        assert proc.stdout is not None and proc.stderr is not None
        self._keep(self._pump(deployment, uid, proc))
        verdict = (await proc.stdout.readline()).decode().strip()
        record = self._read(path) or {}
        if verdict == "invalid":
            path.unlink(missing_ok=True)
            return 422, record.get("messages", {})
        if verdict != "accepted":
            path.unlink(missing_ok=True)
            raise ModelplaneError(
                f"the training of {deployment!r} could not start: "
                f"{record.get('message') or 'the training process exited'}",
                hint=f"see `modelplane logs {deployment}`",
            )
        # As DEEPaaS: the POST reports the training it has just started, even a quick one that
        # finished meanwhile (GET train/{uuid} has the outcome).
        return 200, self.response({**record, "status": "running"})

    async def _pump(self, deployment: str, uid: str, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            if self._log is not None:
                self._log(deployment, f"train-{uid[:8]}", line.decode("utf-8", "replace").rstrip())
        await proc.wait()

    async def _cancel(self, path: Path, record: dict[str, Any]) -> dict[str, Any]:
        pid = record.get("pid")
        if record.get("status") in ("running", "starting") and isinstance(pid, int):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            for _ in range(100):  # up to 5 s, as DEEPaaS waits for the task
                if not _alive(pid):
                    break
                await asyncio.sleep(0.05)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            record = {**(self._read(path) or record), "status": "cancelled"}
        path.unlink(missing_ok=True)  # DEEPaaS forgets a training once it is deleted
        return record

    def _keep(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop watching; training processes go on and keep their records."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[-1].split()[0]
    except OSError:
        return False
    return b"modelplane.worker.train" in cmdline and state != b"Z"
