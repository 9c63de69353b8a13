"""DEEPaaS training on the gateway side: ``/v2/models/{name}/train/`` as DEEPaaS 2.6 answers it.

Each ``POST`` starts a process of its own (:mod:`modelplane.worker.train`) with the deployment's
interpreter, folder and environment, never a serving replica; on the platform inside the
deployment's sandbox (its target's ``confine``), holding what one replica of the deployment
holds (its ``holds``: CPU, memory, GPUs, taken before it starts, given back when it ends). The
POST waits only until the process has read the arguments (``422`` with webargs' messages if they
are wrong). A training that cannot have its resources now is refused at once (409 naming what is
short, 403 over quota), never queued: DEEPaaS's training document has no queued state, so a
queued training would look running while it is not.

Two records per training, so they outlive the platform: the platform's own,
``root/{deployment}/{uuid}.json`` (pid, reservation, dates: never visible to the training), and
the training's, ``root/{deployment}/{uuid}/record.json`` in the one folder the sandbox lets it
write, read back as untrusted input. Listed by ``GET train/``, shown by ``GET train/{uuid}``,
cancelled (every process of its sandbox killed) and forgotten by ``DELETE``, as DEEPaaS does.
"""

from __future__ import annotations

import asyncio
import datetime
import shutil
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from modelplane.errors import ModelplaneError, NotFound
from modelplane.gateway.http import HttpConnection, Request
from modelplane.gateway.trainproc import (
    alive,
    read_from,
    read_untrusted,
    resident_bytes,
    signal_all,
    start_time,
    stop_all,
)
from modelplane.worker.train import DATE, write_record

_JSON = b"application/json; charset=utf-8"
LogLine = Callable[[str, str, str], None]
Confine = Callable[[list[str], dict[str, str], Path], tuple[list[str], dict[str, str]]]
RECORD, BODY, LOG = "record.json", "body", "output.log"
_LIVE = ("starting", "running")


@dataclass(frozen=True)
class Hold:
    """What a training holds while it runs, and the variables that tell it so (its GPUs)."""

    deployment: str
    owner: str
    cpu: float
    memory: int
    gpus: tuple[int, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "gpus": list(self.gpus)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Hold:
        return cls(
            str(d["deployment"]),
            str(d["owner"]),
            float(d["cpu"]),
            int(d["memory"]),
            tuple(int(i) for i in d.get("gpus", ())),
            {str(k): str(v) for k, v in (d.get("env") or {}).items()},
        )


class Holds(Protocol):
    """The node's reservation book, as trainings use it."""

    def take(self, key: str, deployment: str) -> Hold:
        """Reserve one replica's worth of ``deployment``'s resources; raise saying what is short."""
        ...

    def restore(self, key: str, hold: Hold) -> None:
        """Hold again what a training that outlived a platform restart still uses."""
        ...

    def release(self, key: str) -> None: ...


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
    confine: Confine | None = None
    """``(argv, env, folder) -> (argv, env)`` running argv in the deployment's sandbox with
    ``folder`` as its own writable one at ``inside``, printing first the pid the training is
    known by (killing it ends the sandbox); None: unconfined, as replicas are then."""
    inside: str | None = None
    """Where the training's folder appears to it when confined."""
    memory: int | None = None
    """Resident bytes over which the training is stopped, as a replica would be."""


class TrainingBook:
    """Trainings of every deployment under ``root/{deployment}/``."""

    def __init__(
        self,
        root: Path,
        target: Callable[[str], Any],
        log: LogLine | None = None,
        *,
        holds: Holds | None = None,
        interval: float = 0.5,
    ):
        self.root = root
        self._target = target
        self._log = log
        self._holds = holds
        self.interval = interval
        """How often a running training's liveness and memory are looked at."""
        self._tasks: set[asyncio.Task[None]] = set()

    # -- records -------------------------------------------------------------------------------
    def _folder(self, deployment: str) -> Path:
        return self.root / deployment

    def _paths(self, deployment: str, uid: str) -> tuple[Path, Path]:
        folder = self._folder(deployment)
        return folder / f"{uid}.json", folder / uid

    def _own(self, path: Path) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return record if isinstance(record, dict) else None

    def _read(self, deployment: str, uid: str) -> dict[str, Any] | None:
        """The training as it is now: the platform's record, with what the training wrote."""
        path, work = self._paths(deployment, uid)
        record = self._own(path)
        if record is None or record.get("status") not in _LIVE:
            return record
        if record.get("pid") is None:
            return record  # being started right now
        if not alive(record["pid"], record.get("started")):
            return self._finish(deployment, uid)
        return {**record, **read_untrusted(work / RECORD)}

    def _finish(self, deployment: str, uid: str, why: str | None = None) -> dict[str, Any] | None:
        """The training's process has ended: settle its record and give back what it held."""
        path, work = self._paths(deployment, uid)
        if self._holds is not None:
            self._holds.release(_key(uid))
        record = self._own(path)
        if record is None or record.get("status") not in _LIVE:
            return record
        record.update(read_untrusted(work / RECORD))
        why = why or record.pop("stopped", None)
        if why is not None or record.get("status") in _LIVE:
            record.update(
                status="error",
                message=why
                or "the training process ended without a result (it was killed, or the "
                "machine restarted)",
            )
            record.pop("result", None)
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
        paths = sorted(self._folder(deployment).glob("*.json"), key=_mtime)
        for path in paths:
            record = self._read(deployment, path.stem)
            if record is not None and record.get("status") != "invalid":
                found.append(record)
        return found

    def resume(self) -> None:
        """At start-up: trainings still running hold their resources again and are watched;
        those that died meanwhile (or never started) are settled as errors. None is lost."""
        for folder in sorted(p for p in self.root.glob("*") if p.is_dir()):
            for path in sorted(folder.glob("*.json")):
                record = self._own(path)
                if record is None or record.get("status") not in _LIVE:
                    continue
                uid, pid = path.stem, record.get("pid")
                if pid is None:
                    record.update(
                        status="error", message="the platform stopped while it was starting"
                    )
                    write_record(path, record)
                elif not alive(pid, record.get("started")):
                    self._finish(folder.name, uid)
                else:
                    if self._holds is not None and record.get("hold"):
                        self._holds.restore(_key(uid), Hold.from_dict(record["hold"]))
                    seen = _size(folder / uid / LOG)  # logged before the restart
                    self._keep(self._watch(folder.name, uid, record, logged=seen))

    # -- the routes ----------------------------------------------------------------------------
    def handle(
        self, deployment: str, op: str, name: str, uid: str, req: Request, conn: HttpConnection
    ) -> None:
        self._keep(self._answer(deployment, op, name, uid, req, conn))

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
                record = self._read(deployment, uid) if _is_uuid(uid) else None
                if record is None or record.get("status") == "invalid":
                    conn.respond(404, b"404: Not Found", b"text/plain; charset=utf-8")
                    return
                if op == "cancel":
                    record = await self._cancel(deployment, uid, record)
                status, body = 200, self.response(record)
        except ModelplaneError as exc:
            conn.respond_error(exc)
            return
        conn.respond(status, orjson.dumps(body), _JSON)

    async def _start(self, deployment: str, target: TrainTarget, req: Request) -> tuple[int, Any]:
        uid = uuidlib.uuid4().hex
        path, work = self._paths(deployment, uid)
        hold = self._holds.take(_key(uid), deployment) if self._holds is not None else None
        try:
            work.mkdir(mode=0o700, parents=True)
            record: dict[str, Any] = {
                "uuid": uid,
                "date": datetime.datetime.now().strftime(DATE),
                "status": "starting",
            }
            write_record(path, record)
            write_record(work / RECORD, record)
            (work / BODY).write_bytes(bytes(req.body))
            inside = Path(target.inside) if target.confine and target.inside else work
            query = req.url.partition(b"?")[2].decode("latin-1")
            ctype = req.content_type.decode("latin-1") if req.content_type else ""
            args = [target.python, "-m", "modelplane.worker.train"]
            args += ["--record", str(inside / RECORD), "--body", str(inside / BODY)]
            args += ["--log", str(inside / LOG)]
            args += ["--model-path", target.model_path, "--loader", target.loader]
            args += ["--content-type", ctype, "--query", query]
            if target.entrypoint:
                args += ["--entrypoint", target.entrypoint]
            env = {**target.env, **(hold.env if hold else {}), "PYTHONUNBUFFERED": "1"}
            if target.confine is not None:
                args, env = target.confine(args, env, work)
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=target.model_path,
                env=env,
                start_new_session=True,  # it outlives a platform restart
            )
            assert proc.stdout is not None
            pid = proc.pid
            if target.confine is not None:
                line = (await proc.stdout.readline()).decode().strip()
                pid = int(line) if line.isdigit() else -1
        except BaseException:
            self._forget(deployment, uid)
            raise
        record.update(
            pid=pid,
            started=start_time(pid),
            confined=target.confine is not None,
            memory=target.memory,
        )
        if hold is not None:
            record["hold"] = hold.to_dict()
        write_record(path, record)
        assert proc.stdout is not None and proc.stderr is not None
        self._keep(self._pump(deployment, uid, proc))
        if pid > 0:
            self._keep(self._watch(deployment, uid, record))
        verdict = (await proc.stdout.readline()).decode().strip()
        theirs = read_untrusted(work / RECORD)
        if verdict == "invalid":
            self._forget(deployment, uid)
            return 422, theirs.get("messages", {})
        if verdict != "accepted":
            self._forget(deployment, uid)
            raise ModelplaneError(
                f"the training of {deployment!r} could not start: "
                f"{theirs.get('message') or 'the training process exited'}",
                hint=f"see `modelplane logs {deployment}`",
            )
        # As DEEPaaS: the POST reports the training it has just started, even a quick one that
        # finished meanwhile (GET train/{uuid} has the outcome).
        return 200, self.response({**record, **theirs, "status": "running"})

    def _forget(self, deployment: str, uid: str) -> None:
        path, work = self._paths(deployment, uid)
        if self._holds is not None:
            self._holds.release(_key(uid))
        path.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)

    async def _pump(self, deployment: str, uid: str, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            if self._log is not None:
                self._log(deployment, f"train-{uid[:8]}", line.decode("utf-8", "replace").rstrip())
        await proc.wait()

    async def _watch(
        self, deployment: str, uid: str, record: dict[str, Any], logged: int = 0
    ) -> None:
        """Until the training ends: pass its output on to the log, stop it if it goes over its
        memory limit, as a replica is; then settle its record and give back its reservation."""
        pid, started, memory = record["pid"], record.get("started"), record.get("memory")
        confined = bool(record.get("confined"))
        log = self._paths(deployment, uid)[1] / LOG
        while alive(pid, started):
            logged = self._tail(deployment, uid, log, logged)
            rss = resident_bytes(pid, tree=True) if memory else None
            if memory and rss is not None and rss > memory:
                why = (
                    f"the training used {rss / 2**20:.0f} MiB, over its memory limit of "
                    f"{memory / 2**20:.0f} MiB, and was stopped"
                )
                path = self._paths(deployment, uid)[0]
                own = self._own(path)
                if own is not None:  # kept first: whoever sees it dead next says why
                    write_record(path, {**own, "stopped": why})
                signal_all(pid, kill=True, confined=confined)
            await asyncio.sleep(self.interval)
        while (more := self._tail(deployment, uid, log, logged, end=True)) != logged:
            logged = more
        self._finish(deployment, uid)

    def _tail(self, deployment: str, uid: str, log: Path, offset: int, end: bool = False) -> int:
        """Log the training's whole new lines from ``offset`` (with ``end``, the last one even
        if unfinished); the offset after what was logged."""
        data = read_from(log, offset)
        head, newline, _ = data.rpartition(b"\n")
        if newline:
            chunk, step = head, len(head) + 1
        elif end or len(data) == 2**20:  # a line longer than a read is logged in pieces
            chunk, step = data, len(data)
        else:
            return offset  # no whole line yet
        if self._log is not None and step:
            for line in chunk.split(b"\n"):
                self._log(deployment, f"train-{uid[:8]}", line.decode("utf-8", "replace"))
        return offset + step

    async def _cancel(self, deployment: str, uid: str, record: dict[str, Any]) -> dict[str, Any]:
        pid = record.get("pid")
        if record.get("status") in _LIVE and isinstance(pid, int):
            # 5 s to end, as DEEPaaS waits for the task
            await stop_all(pid, record.get("started"), confined=bool(record.get("confined")))
            record = {**(self._read(deployment, uid) or record), "status": "cancelled"}
        self._forget(deployment, uid)  # DEEPaaS forgets a training once it is deleted
        return record

    def removed(self, deployment: str) -> None:
        """``deployment`` is gone: its trainings are cancelled and forgotten, as its replicas
        are stopped (a deployment made again under that name starts with none)."""
        self._keep(self._remove(deployment))

    async def _remove(self, deployment: str) -> None:
        folder = self._folder(deployment)
        records = [(p.stem, self._own(p)) for p in folder.glob("*.json")]
        await asyncio.gather(
            *(self._cancel(deployment, uid, r) for uid, r in records if r is not None)
        )
        shutil.rmtree(folder, ignore_errors=True)

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


def _key(uid: str) -> str:
    """A training's name in the reservation book."""
    return f"train-{uid}"


def _is_uuid(uid: str) -> bool:
    return len(uid) == 32 and all(c in "0123456789abcdef" for c in uid)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0
