"""Async-jobs benchmark: the queue path and `modelplane batch` against their baselines, one run.

Run from the repository root:

    .venv/bin/python bench/jobs.py                      # 2,000 jobs per enqueue path, 10,000 batch
    .venv/bin/python bench/jobs.py --jobs 500 --batch 2000
    .venv/bin/python bench/jobs.py --base /tmp/old/src --rounds 3   # multipart, against a tree

One platform (``modelplane up --watch-interval 0.2``, fresh data dir, free 127.0.0.1 port) with a
dedicated deployment ``echo`` of examples/echo, 2 replicas, input bucket ``echo-in``, output
bucket ``echo-out``, created over REST. Then, in this order:

  1. direct predicts, round 1: POST /api/v1/deployments/echo/predict at the runner's concurrency
  2. jobs through PUT /api/v1/buckets/echo-in/objects/put/NNNNN.json (one object per request),
     from httpx in this process, then the same from wrk (a C client: the client is not the limit)
  3. the platform's CPU while idle with those objects in the input bucket (the watcher's scans)
  4. the filesystem alone: 2 x --jobs small files written, flushed and renamed as the local store
     does (the kernel's share of a job's cost on this disk, measured in the same run), then
     jobs through multipart POST /api/v1/deployments/echo/jobs (many files per request), then
     files renamed straight into the input bucket's folder (the bucket watcher's path)
  5. direct predicts, round 2
  6. ``modelplane batch echo`` over --batch small JSON files, twice (the 2nd finds all done),
     against a plain in-process loop over the same files (read, json.loads, Echo.predict,
     json.dumps, write)

Results: a table on stdout and bench/results/jobs.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.util
import json
import os
import platform as pyplatform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from modelplane.storage.flush import SYNCFS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dataplane import (  # bench/ is not a package
    HOST,
    MODELPLANE,
    ROOT,
    Server,
    free_port,
    lua_script,
    machine_busy_s,
    pids_mentioning,
    process_cpu_s,
    terminate_as_exit,
    wait_until,
    wrk,
)

RESULTS = ROOT / "bench" / "results" / "jobs.json"
ECHO_FOLDER = ROOT / "examples" / "echo"
BODY = b'{"inputs": [1, 2, 3], "name": "bench"}'
JSON_CT = {"content-type": "application/json"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def dist(xs: list[float]) -> dict[str, float]:
    return {"n": len(xs), "min": min(xs) if xs else float("nan"), "p50": pct(xs, 50),
            "p90": pct(xs, 90), "p99": pct(xs, 99), "max": max(xs) if xs else float("nan"),
            "mean": statistics.fmean(xs) if xs else float("nan")}


class Cpu:
    """CPU seconds of the platform process, of the replicas, and of the machine, over a block."""

    def __init__(self, platform_pid: int, replica_pids: list[int]) -> None:
        self.pp, self.rp = [platform_pid], replica_pids

    @staticmethod
    def _kernel(pid: int) -> float:
        """The system (kernel) share of a process's CPU seconds: on this machine's ext4 most of
        it is creating files (inode allocation), which tmpfs (``--tmp /dev/shm``) takes away."""
        try:
            with open(f"/proc/{pid}/stat") as f:
                return int(f.read().rpartition(")")[2].split()[12]) / os.sysconf("SC_CLK_TCK")
        except OSError:
            return 0.0

    def __enter__(self) -> Cpu:
        self.t0 = time.monotonic()
        self.k0 = self._kernel(self.pp[0])
        self.p0, self.r0 = process_cpu_s(self.pp), process_cpu_s(self.rp)
        self.m0 = machine_busy_s()
        self.s0 = self._own()
        return self

    @staticmethod
    def _own() -> float:
        # this process and its finished children (wrk, the batch CLI)
        a = resource.getrusage(resource.RUSAGE_SELF)
        b = resource.getrusage(resource.RUSAGE_CHILDREN)
        return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime

    def __exit__(self, *exc: object) -> None:
        self.wall = time.monotonic() - self.t0
        self.platform = process_cpu_s(self.pp) - self.p0
        self.platform_kernel = self._kernel(self.pp[0]) - self.k0
        self.replicas = process_cpu_s(self.rp) - self.r0
        self.client = self._own() - self.s0
        self.machine = machine_busy_s() - self.m0
        # what the rest of the machine (other engineers' tests) used meanwhile, in cores
        self.other_cores = (self.machine - self.platform - self.replicas - self.client) / max(
            self.wall, 1e-9)

    def as_dict(self, per: int | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {"wall_s": self.wall, "platform_cpu_s": self.platform,
                             "replicas_cpu_s": self.replicas, "client_cpu_s": self.client,
                             "machine_busy_s": self.machine, "other_load_cores": self.other_cores}
        if per:
            d["platform_cpu_ms_per_item"] = 1000 * self.platform / per
            d["platform_kernel_ms_per_item"] = 1000 * self.platform_kernel / per
            d["replicas_cpu_ms_per_item"] = 1000 * self.replicas / per
        return d


# -- the platform ---------------------------------------------------------------------------------


class Platform:
    def __init__(self, tmp: Path, replicas: int, watch_interval: float,
                 src: Path | None = None) -> None:
        self.data_dir = tmp / "platform-data"
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        env = {k: v for k, v in os.environ.items()
               if k not in ("MODELPLANE_DATA_DIR", "MODELPLANE_URL", "MODELPLANE_TOKEN",
                            "PYTHONPATH")}
        if src is not None:  # another tree's code (its src/ ahead of this checkout's)
            env["PYTHONPATH"] = str(src.resolve())
        self.env = env
        self.server = Server(
            "platform", f"platform, dedicated, {replicas} replicas",
            [str(MODELPLANE), "up", "--data-dir", str(self.data_dir), "--port", str(self.port),
             "--watch-interval", str(watch_interval)],
            f"{self.base}/api/v1/deployments/echo/predict", tmp / "platform.log", env=env,
            stop_signal=signal.SIGTERM, stop_grace=20.0,
            extra_pids=lambda: pids_mentioning(str(self.data_dir)),
        )
        self.replicas = replicas
        self.token = ""

    def start(self) -> None:
        self.boot()
        spec = {"name": "echo", "mode": "dedicated", "scale": {"replicas": self.replicas},
                "model": {"path": str(ECHO_FOLDER)}, "input": "echo-in", "output": "echo-out"}
        self.deploy(spec)

        def echoes() -> bool:
            s = self.server
            a = httpx.post(s.url, content=BODY, headers={**JSON_CT, **s.headers}, timeout=5)
            return a.status_code == 200 and a.json() == json.loads(BODY)

        wait_until("echo answer", echoes, self.server, 60)

    def boot(self) -> None:
        """Start ``modelplane up`` and wait until its API answers with the admin token."""
        s = self.server
        s.start()
        token_file = self.data_dir / "admin.token"

        def api_up() -> bool:
            if not token_file.exists() or not token_file.read_text().strip():
                return False
            tok = token_file.read_text().strip()
            return httpx.get(f"{self.base}/api/v1/deployments", timeout=2,
                             headers={"Authorization": f"Bearer {tok}"}).status_code == 200

        wait_until("control plane answer", api_up, s, 60)
        self.token = token_file.read_text().strip()
        s.headers = {"Authorization": f"Bearer {self.token}"}

    def deploy(self, spec: dict[str, Any]) -> None:
        """Create a deployment over REST and wait for its replicas (dedicated specs)."""
        s = self.server
        r = httpx.post(f"{self.base}/api/v1/deployments", json=spec, headers=s.headers,
                       timeout=30)
        if r.status_code not in (200, 201):
            raise RuntimeError(f"creating the deployment: {r.status_code} {r.text}")
        want = spec.get("scale", {}).get("replicas", 1)
        name = spec["name"]
        wait_until(f"{want} ready replicas of {name}",
                   lambda: (self.status(name)["status"].get("ready") or 0) >= want, s, 120)

    def status(self, name: str = "echo") -> dict[str, Any]:
        r = httpx.get(f"{self.base}/api/v1/deployments/{name}", headers=self.server.headers,
                      timeout=5)
        r.raise_for_status()
        return dict(r.json())

    def replica_pids(self) -> list[int]:
        return [int(r["pid"]) for r in self.status()["status"].get("replicas", [])
                if r.get("pid")]

    def counts(self) -> dict[str, int]:
        r = httpx.get(f"{self.base}/api/v1/deployments/echo/jobs", params={"limit": 1},
                      headers=self.server.headers, timeout=10)
        r.raise_for_status()
        return dict(r.json()["counts"])

    def all_jobs(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        with httpx.Client(base_url=self.base, headers=self.server.headers, timeout=30) as c:
            while True:
                r = c.get("/api/v1/deployments/echo/jobs",
                          params={"limit": 1000, "offset": len(out)})
                r.raise_for_status()
                page = r.json()["jobs"]
                out.extend(page)
                if len(page) < 1000:
                    return out

    def cpu(self) -> Cpu:
        return Cpu(self.server.pid, self.replica_pids())


# -- direct predicts ------------------------------------------------------------------------------


async def direct(p: Platform, concurrency: int, duration: float) -> dict[str, Any]:
    """Synchronous predicts of BODY for ``duration`` s at ``concurrency``; httpx, keep-alive."""
    lat: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=p.base, headers={**p.server.headers, **JSON_CT},
                                 limits=limits, timeout=30) as http:
        stop = time.monotonic() + duration

        async def worker() -> None:
            nonlocal errors
            while time.monotonic() < stop:
                t = time.perf_counter()
                r = await http.post("/api/v1/deployments/echo/predict", content=BODY)
                if r.status_code == 200:
                    lat.append(time.perf_counter() - t)
                else:
                    errors += 1

        t0 = time.perf_counter()
        with p.cpu() as cpu:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    n = len(lat)
    return {"requests": n, "errors": errors, "wall_s": wall, "rps": n / wall,
            "per_request_ms": 1000 * wall / n if n else float("nan"),
            "latency_ms": dist([1000 * x for x in lat]), "cpu": cpu.as_dict(n)}


def direct_wrk(p: Platform, script: Path, concurrency: int, duration: float) -> dict[str, Any]:
    """The same predicts from wrk (-t1, keep-alive): what the platform does when the client
    is not the limit (httpx in this process tops out at a few hundred requests/s here)."""
    with p.cpu() as cpu:
        r = wrk(p.server, script, concurrency, duration, latency=True)
    n = r["requests"]
    return {"requests": n, "errors": r["errors"], "rps": r["rps"],
            "per_request_ms": 1000 / r["rps"],
            "latency_ms": {"p50": r["p50_us"] / 1000, "p90": r["p90_us"] / 1000,
                           "p99": r["p99_us"] / 1000, "mean": r["mean_us"] / 1000},
            "cpu": cpu.as_dict(n)}


# -- jobs -----------------------------------------------------------------------------------------


def rates(timeline: list[tuple[float, int, int, int]], n: int,
          enqueue_s: float) -> tuple[float | None, int, float | None]:
    """From a ``(t, active, succeeded, failed)`` timeline of ``n`` jobs: the steady rate (10 % ->
    90 % succeeded), the jobs left when the last upload returned, and how fast they drained."""
    def t_reach(k: int) -> float:
        return next(t for t, _q, s, _f in timeline if s >= k)

    t_all = timeline[-1][0]
    k10, k90 = max(1, round(0.1 * n)), max(1, round(0.9 * n))
    steady = (k90 - k10) / (t_reach(k90) - t_reach(k10)) if t_reach(k90) > t_reach(k10) else None
    left = next((n - s - f for t, _q, s, f in timeline if t >= enqueue_s), 0)
    drain = left / (t_all - enqueue_s) if left >= 0.1 * n and t_all > enqueue_s else None
    return steady, left, drain


async def jobs_run(p: Platform, kind: str, n: int, concurrency: int, per_request: int,
                   deadline_s: float) -> dict[str, Any]:
    """Enqueue ``n`` jobs through one path, as fast as possible; follow them to succeeded."""
    before = p.counts()
    base_ok, base_failed = before.get("succeeded", 0), before.get("failed", 0)
    prefix = f"{kind}/"
    names = [f"{i:05d}.json" for i in range(n)]
    bodies = [b'{"inputs": [1, 2, 3], "name": "bench", "i": %d}' % i for i in range(n)]
    timeline: list[tuple[float, int, int, int]] = []  # (t, queued+running, succeeded, failed)
    enq_errors: list[str] = []
    done_enqueue = asyncio.Event()
    enq_end = 0.0
    limits = httpx.Limits(max_connections=concurrency + 1,
                          max_keepalive_connections=concurrency + 1)
    async with httpx.AsyncClient(base_url=p.base, headers=p.server.headers, limits=limits,
                                 timeout=120) as http:
        if kind == "put":
            items = [[i] for i in range(n)]
        else:
            items = [list(range(i, min(n, i + per_request))) for i in range(0, n, per_request)]
        todo = iter(items)

        async def enqueue_worker() -> None:
            for batch in todo:
                if kind == "put":
                    i = batch[0]
                    r = await http.put(f"/api/v1/buckets/echo-in/objects/{prefix}{names[i]}",
                                       content=bodies[i], headers=JSON_CT)
                else:
                    files = [("files", (names[i], bodies[i], "application/json")) for i in batch]
                    r = await http.post("/api/v1/deployments/echo/jobs", files=files,
                                        data={"prefix": prefix})
                if r.status_code != 201:
                    enq_errors.append(f"{r.status_code}: {r.text[:200]}")

        async def enqueue() -> None:
            nonlocal enq_end
            await asyncio.gather(*(enqueue_worker() for _ in range(concurrency)))
            enq_end = time.perf_counter()
            done_enqueue.set()

        async def poll() -> None:
            stop = time.perf_counter() + deadline_s
            while time.perf_counter() < stop:
                r = await http.get("/api/v1/deployments/echo/jobs", params={"limit": 1})
                c = r.json()["counts"]
                ok, failed = c.get("succeeded", 0) - base_ok, c.get("failed", 0) - base_failed
                timeline.append((time.perf_counter() - t0, c.get("queued", 0) + c.get("running", 0),
                                 ok, failed))
                if done_enqueue.is_set() and ok + failed >= n - len(enq_errors):
                    return
                await asyncio.sleep(0.1)
            raise TimeoutError(f"{kind}: jobs not all finished within {deadline_s:.0f} s "
                               f"(last counts {timeline[-1] if timeline else None})")

        t0 = time.perf_counter()
        with p.cpu() as cpu:
            await asyncio.gather(enqueue(), poll())
        t_all = timeline[-1][0]
    enqueue_s = enq_end - t0
    ok, failed = timeline[-1][2], timeline[-1][3]

    steady, left, drain = rates(timeline, n, enqueue_s)
    return {
        "kind": kind, "jobs": n, "requests": len(items), "files_per_request": per_request,
        "enqueue_concurrency": concurrency, "enqueue_errors": len(enq_errors),
        "enqueue_error_samples": enq_errors[:5],
        "enqueue_s": enqueue_s, "enqueue_jobs_per_s": n / enqueue_s,
        "all_done_s": t_all, "succeeded": ok, "failed": failed,
        "end_to_end_jobs_per_s": ok / t_all,
        "steady_jobs_per_s": steady, "steady_window": "10% -> 90% succeeded",
        "left_at_enqueue_end": left, "drain_jobs_per_s": drain,
        "max_backlog": max(q for _t, q, _s, _f in timeline),
        "cpu": cpu.as_dict(n), "timeline": timeline,
    }


WRK_PUT = """\
wrk.method = "PUT"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{auth}
sent, answered, ok = 0, 0, 0
request = function()
  sent = sent + 1
  return wrk.format(nil, string.format("/api/v1/buckets/echo-in/objects/wrk/%05d.json", sent))
end
response = function(status, headers, body)
  answered = answered + 1
  if status == 201 then ok = ok + 1 end
  if answered >= {n} then wrk.thread:stop() end
end
done = function(summary, latency, requests)
  io.write(string.format(
    "MPBENCH {{\\"requests\\": %d, \\"duration_us\\": %d, \\"status\\": %d}}\\n",
    summary.requests, summary.duration, summary.errors.status))
end
"""


async def jobs_wrk(p: Platform, n: int, concurrency: int, deadline_s: float,
                   tmp: Path) -> dict[str, Any]:
    """``n`` PUT uploads from wrk (a C client, so the client is not the limit), followed to
    succeeded like :func:`jobs_run`. wrk stops sending after the ``n``-th answer and is then
    interrupted (it prints its summary on SIGINT) once the platform holds the ``n`` jobs; the
    jobs counted are its 201s."""
    before = p.counts()
    base_ok, base_failed = before.get("succeeded", 0), before.get("failed", 0)
    base_all = sum(before.values())
    script = tmp / "wrk-put.lua"
    auth = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in p.server.headers.items())
    script.write_text(WRK_PUT.format(body=json.dumps(BODY.decode()), auth=auth, n=n))
    timeline: list[tuple[float, int, int, int]] = []
    argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{deadline_s:.0f}s", "--timeout", "10s",
            "-s", str(script), p.base]
    async with httpx.AsyncClient(base_url=p.base, headers=p.server.headers, timeout=60) as http:
        t0 = time.perf_counter()
        with p.cpu() as cpu:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out_task = asyncio.ensure_future(proc.communicate())
            uploaded: int | None = None
            enqueue_s = 0.0
            stop = t0 + deadline_s
            while time.perf_counter() < stop:
                if uploaded is None and out_task.done():
                    stdout, stderr = out_task.result()
                    enqueue_s = time.perf_counter() - t0
                    line = next((ln for ln in stdout.decode().splitlines()
                                 if ln.startswith("MPBENCH ")), None)
                    if proc.returncode != 0 or line is None:
                        raise RuntimeError(f"wrk failed: {stdout.decode()}{stderr.decode()}")
                    w = json.loads(line.removeprefix("MPBENCH "))
                    uploaded = w["requests"] - w["status"]
                    errors = w["status"]
                r = await http.get("/api/v1/deployments/echo/jobs", params={"limit": 1})
                c = r.json()["counts"]
                ok, failed = c.get("succeeded", 0) - base_ok, c.get("failed", 0) - base_failed
                timeline.append((time.perf_counter() - t0, c.get("queued", 0)
                                 + c.get("running", 0), ok, failed))
                if proc.returncode is None and sum(c.values()) - base_all >= n:
                    proc.send_signal(signal.SIGINT)  # all made: wrk would idle to -d
                if uploaded is not None and ok + failed >= uploaded:
                    break
                await asyncio.sleep(0.1)
            else:
                raise TimeoutError(f"wrk: jobs not all finished within {deadline_s:.0f} s")
    t_all = timeline[-1][0]
    ok, failed = timeline[-1][2], timeline[-1][3]

    steady, left, drain = rates(timeline, uploaded, enqueue_s)
    return {
        "kind": "wrk", "jobs": uploaded, "requests": uploaded + errors, "files_per_request": 1,
        "enqueue_concurrency": concurrency, "enqueue_errors": errors,
        "enqueue_error_samples": [], "enqueue_s": enqueue_s,
        "enqueue_jobs_per_s": uploaded / enqueue_s, "all_done_s": t_all, "succeeded": ok,
        "failed": failed, "end_to_end_jobs_per_s": ok / t_all, "steady_jobs_per_s": steady,
        "steady_window": "10% -> 90% succeeded", "left_at_enqueue_end": left,
        "drain_jobs_per_s": drain, "max_backlog": max(q for _t, q, _s, _f in timeline),
        "cpu": cpu.as_dict(uploaded), "timeline": timeline,
    }


async def jobs_drop(p: Platform, n: int, deadline_s: float) -> dict[str, Any]:
    """``n`` files renamed into the input bucket's folder (``drop/NNNNN.json``), not through the
    API: the bucket watcher's path (file events, look-ups, group-committed enqueues). Written
    first into a folder beside the buckets (same filesystem), so each lands whole, as a file
    moved in by hand or by another program does; followed to succeeded like :func:`jobs_run`."""
    before = p.counts()
    base_ok, base_failed = before.get("succeeded", 0), before.get("failed", 0)
    stage, folder = p.data_dir / "drop-staging", p.data_dir / "buckets" / "echo-in" / "drop"
    stage.mkdir()
    folder.mkdir()
    names = [f"{i:05d}.json" for i in range(n)]
    for i, name in enumerate(names):
        (stage / name).write_bytes(b'{"inputs": [1, 2, 3], "name": "bench", "i": %d}' % i)
    timeline: list[tuple[float, int, int, int]] = []
    async with httpx.AsyncClient(base_url=p.base, headers=p.server.headers, timeout=60) as http:
        t0 = time.perf_counter()
        with p.cpu() as cpu:
            for name in names:
                os.rename(stage / name, folder / name)
            enqueue_s = time.perf_counter() - t0
            stop = t0 + deadline_s
            while True:
                r = await http.get("/api/v1/deployments/echo/jobs", params={"limit": 1})
                c = r.json()["counts"]
                ok, failed = c.get("succeeded", 0) - base_ok, c.get("failed", 0) - base_failed
                timeline.append((time.perf_counter() - t0,
                                 c.get("queued", 0) + c.get("running", 0), ok, failed))
                if ok + failed >= n:
                    break
                if time.perf_counter() > stop:
                    raise TimeoutError(f"drop: jobs not all finished within {deadline_s:.0f} s")
                await asyncio.sleep(0.1)
    t_all, ok, failed = timeline[-1][0], timeline[-1][2], timeline[-1][3]
    steady, left, drain = rates(timeline, n, enqueue_s)
    return {
        "kind": "drop", "jobs": n, "requests": 0, "files_per_request": 0,
        "enqueue_concurrency": 1, "enqueue_errors": 0, "enqueue_error_samples": [],
        "enqueue_s": enqueue_s, "enqueue_jobs_per_s": n / max(enqueue_s, 1e-9),
        "all_done_s": t_all, "succeeded": ok, "failed": failed,
        "end_to_end_jobs_per_s": ok / t_all, "steady_jobs_per_s": steady,
        "steady_window": "10% -> 90% succeeded", "left_at_enqueue_end": left,
        "drain_jobs_per_s": drain, "max_backlog": max(q for _t, q, _s, _f in timeline),
        "cpu": cpu.as_dict(n), "timeline": timeline,
    }


def files_baseline(folder: Path, n: int, group: int = 64, flush: str = "syncfs") -> dict[str, Any]:
    """The filesystem's own cost of what a job makes there: ``n`` small files each written to
    a temporary name, flushed and renamed into place, as the local store writes an object, in
    this process. A job makes two (its input and its result), so this is the part of the
    platform's CPU per job that is the kernel's creating files, on this disk in its present
    state (on ext4 without a journal, creating an inode slows down for minutes after many files
    were deleted nearby). ``flush``: ``syncfs`` once per ``group`` of files, as the store flushes
    a group now (modelplane/storage/flush.py), or ``fsync`` each file of the group, as it did
    before; ``group=1``: each file written and flushed on its own, as before ``put_many``."""
    folder.mkdir()
    c0, t0, b0 = os.times(), time.perf_counter(), machine_busy_s()
    for first in range(0, n, group):
        fds = []
        for i in range(first, min(n, first + group)):
            fd = os.open(folder / f".tmp-{i:05d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, b'{"inputs": [1, 2, 3], "name": "bench", "i": %d}' % i)
            fds.append((i, fd))
        if flush == "syncfs" and SYNCFS is not None and len(fds) >= 8:
            SYNCFS(fds[0][1])
        else:
            for _, fd in fds:
                os.fsync(fd)
        for i, fd in fds:
            os.close(fd)
            os.replace(folder / f".tmp-{i:05d}", folder / f"{i:05d}.json")
    wall, c1, b1 = time.perf_counter() - t0, os.times(), machine_busy_s()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    return {"files": n, "group": group, "flush": flush, "seconds": wall, "files_per_s": n / wall,
            "cpu_ms_per_file": 1000 * cpu / n,
            "kernel_ms_per_file": 1000 * (c1.system - c0.system) / n,
            "machine_ms_per_file": 1000 * (b1 - b0) / n}


def ab_rounds(args: argparse.Namespace) -> int:
    """``--base SRC``: the multipart step alone, this tree against another one, ``--rounds``
    interleaved rounds, each on a fresh platform (same machine, same minutes, same disk state:
    read the per-round ratios)."""
    rows: list[dict[str, Any]] = []
    # Every round's files stay until the end: on ext4 without a journal, creating a file skips
    # the inodes deleted in the last 60 to 360 seconds one by one, so removing a round's 16,000
    # files made the next round's file creation 4 times dearer (a file alone 0.2 -> 0.8 ms).
    litter: list[Path] = []
    try:
        _ab_rounds(args, rows, litter)
    finally:
        for tmp in litter:
            shutil.rmtree(tmp, ignore_errors=True)
    return _ab_report(args, rows)


def _ab_rounds(args: argparse.Namespace, rows: list[dict[str, Any]], litter: list[Path]) -> None:
    for r in range(args.rounds):
        for key, src in (("base", args.base), ("this", None)):
            tmp = Path(tempfile.mkdtemp(prefix="mp-bench-jobs-ab-", dir=args.tmp))
            litter.append(tmp)
            plat = Platform(tmp, args.replicas, args.watch_interval, src)
            try:
                with terminate_as_exit():
                    plat.start()
                    asyncio.run(jobs_run(plat, "put", 100, args.concurrency, 1, 60))  # warm-up
                    halves = [files_baseline(tmp / f"fs-baseline-{i}", args.jobs, 64, flush)
                              for i, flush in enumerate(("syncfs", "fsync"))]
                    fsb, fsync_each = halves
                    mp = asyncio.run(jobs_run(plat, "multipart", args.jobs,
                                              args.upload_concurrency, args.files_per_request,
                                              max(120.0, args.jobs / 10)))
            finally:
                plat.server.stop()
            mp.pop("timeline")
            row = {"round": r + 1, "tree": key, "e2e": mp["end_to_end_jobs_per_s"],
                   "steady": mp["steady_jobs_per_s"],
                   "cpu_ms": mp["cpu"]["platform_cpu_ms_per_item"],
                   "kernel_ms": mp["cpu"]["platform_kernel_ms_per_item"],
                   "file_cpu_ms": fsb["cpu_ms_per_file"],
                   "file_fsync_cpu_ms": fsync_each["cpu_ms_per_file"], "failed": mp["failed"]}
            rows.append(row)
            log(f"round {r + 1} {key}: {row['e2e']:.0f} jobs/s e2e, {row['cpu_ms']:.2f} ms "
                f"CPU/job ({row['kernel_ms']:.2f} kernel), a file alone {row['file_cpu_ms']:.3f} ms "
                f"({row['file_fsync_cpu_ms']:.3f} with an fsync each)")


def _ab_report(args: argparse.Namespace, rows: list[dict[str, Any]]) -> int:
    print(f"multipart jobs ({args.jobs} per round, {args.files_per_request} files/request, "
          f"{args.upload_concurrency} in flight), this tree against {args.base}, "
          f"data under {args.tmp or tempfile.gettempdir()}")
    print("  round  tree   e2e jobs/s   steady   CPU ms/job (kernel)  a file alone ms "
          "(fsync each)   this ÷ base: jobs/s  CPU")
    for r in range(args.rounds):
        b, t = rows[2 * r], rows[2 * r + 1]
        for row in (b, t):
            ratio = ""
            if row is t:
                ratio = f"   {t['e2e'] / b['e2e']:5.2f}x  {t['cpu_ms'] / b['cpu_ms']:5.2f}x"
            print(f"  {row['round']:5d}  {row['tree']:5s} {row['e2e']:11.0f} "
                  f"{row['steady'] or 0:8.0f} {row['cpu_ms']:11.2f} ({row['kernel_ms']:.2f})"
                  f" {row['file_cpu_ms']:16.3f} ({row['file_fsync_cpu_ms']:.3f}){ratio}")
    ratios = [rows[2 * r + 1]["e2e"] / rows[2 * r]["e2e"] for r in range(args.rounds)]
    cpus = [rows[2 * r + 1]["cpu_ms"] / rows[2 * r]["cpu_ms"] for r in range(args.rounds)]
    print(f"  median this ÷ base: {statistics.median(ratios):.2f}x jobs/s, "
          f"{statistics.median(cpus):.2f}x CPU per job")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                                    "base": str(args.base), "rounds": rows}, indent=2) + "\n")
    return 1 if any(row["failed"] for row in rows) else 0


def merge_baselines(parts: list[dict[str, Any]]) -> dict[str, Any]:
    n = sum(p["files"] for p in parts)
    wall = sum(p["seconds"] for p in parts)
    return {"files": n, "seconds": wall, "files_per_s": n / wall,
            "cpu_ms_per_file": sum(p["cpu_ms_per_file"] * p["files"] for p in parts) / n,
            "kernel_ms_per_file": sum(p["kernel_ms_per_file"] * p["files"] for p in parts) / n,
            "machine_ms_per_file": sum(p["machine_ms_per_file"] * p["files"] for p in parts) / n}


def latencies(all_jobs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    def ts(x: str) -> float:
        return dt.datetime.fromisoformat(x).timestamp()

    rows = [j for j in all_jobs if j["input"]["key"].startswith(f"{kind}/")
            and j["state"] == "succeeded" and j["finished_at"]]
    e2e = [1000 * (ts(j["finished_at"]) - ts(j["created_at"])) for j in rows]
    wait = [1000 * (ts(j["started_at"]) - ts(j["created_at"])) for j in rows if j["started_at"]]
    run = [1000 * (ts(j["finished_at"]) - ts(j["started_at"])) for j in rows if j["started_at"]]
    attempts = [j["attempts"] for j in rows]
    return {"created_to_finished_ms": dist(e2e), "created_to_started_ms": dist(wait),
            "started_to_finished_ms": dist(run),
            "retried": sum(1 for a in attempts if a > 1)}


# -- batch ----------------------------------------------------------------------------------------


def batch_cli(p: Platform, src: Path, dst: Path, logf: Path, timeout: float) -> dict[str, Any]:
    argv = [str(MODELPLANE), "batch", "echo", "--input", str(src), "--output", str(dst),
            "--url", p.base, "--token", p.token]
    with open(logf, "ab") as out, p.cpu() as cpu:
        t0 = time.perf_counter()
        r = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           env=p.env, cwd=ROOT, timeout=timeout)
        wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    outputs = sum(1 for f in dst.iterdir() if not f.name.startswith("."))
    return {"returncode": r.returncode, "seconds": wall, "outputs": outputs,
            "cpu": cpu.as_dict(), "children_rusage_cpu_s_total": ru.ru_utime + ru.ru_stime}


def inprocess_loop(src: Path, dst: Path) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("echo_model", ECHO_FOLDER / "echo_model.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = mod.Echo()
    model.load()
    names = sorted(os.listdir(src))
    t0 = time.perf_counter()
    for name in names:
        data = json.loads((src / name).read_bytes())
        (dst / (name + ".json")).write_bytes(json.dumps(model.predict(data)).encode())
    wall = time.perf_counter() - t0
    return {"inputs": len(names), "seconds": wall, "inputs_per_s": len(names) / wall}


# -- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--jobs", type=int, default=2000, help="jobs per enqueue path [2000]")
    ap.add_argument("--batch", type=int, default=10_000, help="inputs of the batch run [10000]")
    ap.add_argument("--replicas", type=int, default=2, help="replicas of the deployment [2]")
    ap.add_argument("--concurrency", type=int, default=8,
                    help="direct predicts in flight, and PUT uploads in flight [8]")
    ap.add_argument("--files-per-request", type=int, default=100,
                    help="files per multipart upload [100]")
    ap.add_argument("--upload-concurrency", type=int, default=2,
                    help="multipart uploads in flight [2]")
    ap.add_argument("--duration", type=float, default=4.0, help="seconds per direct round [4]")
    ap.add_argument("--watch-interval", type=float, default=0.2, help="bucket scans [0.2]")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results [{RESULTS}]")
    ap.add_argument("--tmp", type=Path, default=None,
                    help="where the run's temporary folder (the platform's data dir, the batch "
                         "files) goes, e.g. /dev/shm to leave the disk out [the system's]")
    ap.add_argument("--base", type=Path, default=None,
                    help="another tree's src/: only the multipart step, --rounds interleaved "
                         "rounds of it and of this tree, each on a fresh platform")
    ap.add_argument("--rounds", type=int, default=3, help="rounds with --base [3]")
    args = ap.parse_args(argv)
    if args.jobs < 10 or args.batch < 1:
        ap.error("--jobs must be >= 10 and --batch >= 1")
    if args.base is not None:
        if not (args.base / "modelplane").is_dir():
            ap.error(f"--base {args.base}: expected a src/ folder holding modelplane/")
        if args.out == RESULTS:
            args.out = RESULTS.with_name("jobs_ab.json")
        return ab_rounds(args)

    started = time.time()
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="mp-bench-jobs-", dir=args.tmp))
    plat = Platform(tmp, args.replicas, args.watch_interval)
    doc: dict[str, Any] = {}
    finished = False
    deadline = max(120.0, args.jobs / 10)  # bound: 10 jobs/s at the very least
    try:
        with terminate_as_exit():
            log(f"starting the platform (data dir {plat.data_dir}) and deploying echo")
            plat.start()
            st = plat.status()
            target = st["spec"]["scale"]["target_concurrency"] if "spec" in st else None
            log("warm-up: 1 s of direct predicts")
            asyncio.run(direct(plat, args.concurrency, 1.0))

            script = lua_script(plat.server, tmp)
            wrk(plat.server, script, args.concurrency, 1.0)
            w1 = direct_wrk(plat, script, args.concurrency, args.duration)
            d1 = asyncio.run(direct(plat, args.concurrency, args.duration))
            log(f"direct round 1: wrk {w1['rps']:.0f} req/s, httpx {d1['rps']:.0f} req/s, "
                f"errors {w1['errors'] + d1['errors']}")
            log(f"enqueueing {args.jobs} jobs with PUT (concurrency {args.concurrency})")
            put = asyncio.run(jobs_run(plat, "put", args.jobs, args.concurrency, 1, deadline))
            log(f"PUT: enqueue {put['enqueue_jobs_per_s']:.0f}/s, end-to-end "
                f"{put['end_to_end_jobs_per_s']:.0f} jobs/s, failed {put['failed']}")

            log(f"enqueueing {args.jobs} jobs with PUT from wrk (concurrency {args.concurrency})")
            wk = asyncio.run(jobs_wrk(plat, args.jobs, args.concurrency, deadline, tmp))
            log(f"PUT via wrk: enqueue {wk['enqueue_jobs_per_s']:.0f}/s, end-to-end "
                f"{wk['end_to_end_jobs_per_s']:.0f} jobs/s, failed {wk['failed']}")

            log("idle 3 s with the objects in the input bucket (watcher cost)")
            time.sleep(0.5)
            with plat.cpu() as idle:
                time.sleep(3.0)

            log(f"the filesystem alone: {2 * args.jobs} files as the store writes them (groups of "
                "64, one syncfs each), as many with an fsync each, and as many flushed one by one")
            # The three ways in alternating thirds: file creation drifts with the disk's state
            # from one second to the next, so none goes first on its own.
            ways = [(64, "syncfs"), (64, "fsync"), (1, "fsync")]
            parts = [files_baseline(tmp / f"fs-baseline-{i}", args.jobs, *ways[i % 3])
                     for i in range(6)]
            fsb, fsb64, fsb1 = (merge_baselines(parts[k::3]) for k in range(3))

            log(f"enqueueing {args.jobs} jobs with multipart POST "
                f"({args.files_per_request} files/request, {args.upload_concurrency} in flight)")
            mp = asyncio.run(jobs_run(plat, "multipart", args.jobs, args.upload_concurrency,
                                      args.files_per_request, deadline))
            log(f"multipart: enqueue {mp['enqueue_jobs_per_s']:.0f}/s, end-to-end "
                f"{mp['end_to_end_jobs_per_s']:.0f} jobs/s, failed {mp['failed']}")

            log(f"renaming {args.jobs} files into the input bucket's folder (the watcher's path)")
            dr = asyncio.run(jobs_drop(plat, args.jobs, deadline))
            log(f"dropped files: end-to-end {dr['end_to_end_jobs_per_s']:.0f} jobs/s, "
                f"failed {dr['failed']}")

            log(f"idle 3 s with {3 * args.jobs + wk['jobs']} objects in the input bucket")
            time.sleep(0.5)
            with plat.cpu() as idle2:
                time.sleep(3.0)

            w2 = direct_wrk(plat, script, args.concurrency, args.duration)
            d2 = asyncio.run(direct(plat, args.concurrency, args.duration))
            log(f"direct round 2: wrk {w2['rps']:.0f} req/s, httpx {d2['rps']:.0f} req/s, "
                f"errors {w2['errors'] + d2['errors']}")

            all_jobs = plat.all_jobs()
            lat = {k: latencies(all_jobs, k) for k in ("put", "wrk", "multipart", "drop")}

            log(f"writing {args.batch} input files")
            bin_, bout, bloop = tmp / "batch-in", tmp / "batch-out", tmp / "loop-out"
            for d in (bin_, bout, bloop):
                d.mkdir()
            for i in range(args.batch):
                (bin_ / f"{i:05d}.json").write_bytes(
                    b'{"inputs": [1, 2, 3], "name": "bench", "i": %d}' % i)
            log("modelplane batch, run 1")
            btimeout = max(300.0, args.batch / 10)
            b1 = batch_cli(plat, bin_, bout, tmp / "batch.log", btimeout)
            log(f"batch run 1: {b1['seconds']:.1f} s, exit {b1['returncode']}, "
                f"{b1['outputs']} outputs")
            log("modelplane batch, run 2 (all done already)")
            b2 = batch_cli(plat, bin_, bout, tmp / "batch.log", btimeout)
            log(f"batch run 2: {b2['seconds']:.2f} s, exit {b2['returncode']}")
            loop = inprocess_loop(bin_, bloop)
            log(f"in-process loop: {loop['seconds']:.2f} s")
            restarts = plat.status()["status"].get("restarts")
            finished = True
    finally:
        plat.server.stop()
        if not finished:
            log(f"stopped early; logs and data kept in {tmp}")
    load_after = os.getloadavg()

    direct_rps = statistics.fmean([w1["rps"], w2["rps"]])
    direct_ms = 1000 / direct_rps
    httpx_ms = 1000 / statistics.fmean([d1["rps"], d2["rps"]])
    direct_cpu_ms = statistics.fmean([w["cpu"]["platform_cpu_ms_per_item"] for w in (w1, w2)])
    compare = {}
    for r in (put, wk, mp, dr):
        rate = r["steady_jobs_per_s"] or r["end_to_end_jobs_per_s"]
        job_ms = 1000 / rate
        cpu_ms = r["cpu"]["platform_cpu_ms_per_item"]
        compare[r["kind"]] = {"job_ms": job_ms, "direct_ms": direct_ms,
                              "overhead_ms": job_ms - direct_ms, "ratio": job_ms / direct_ms,
                              "direct_httpx_ms": httpx_ms,
                              "overhead_vs_httpx_ms": job_ms - httpx_ms,
                              "ratio_vs_httpx": job_ms / httpx_ms,
                              "platform_cpu_ms_per_job": cpu_ms,
                              "platform_cpu_ms_per_direct_request": direct_cpu_ms,
                              "cpu_ratio": cpu_ms / direct_cpu_ms,
                              "rate_used": "steady" if r["steady_jobs_per_s"] else "end_to_end"}
    n_batch = args.batch
    b1["inputs_per_s"] = n_batch / b1["seconds"]
    b2["inputs_per_s"] = n_batch / b2["seconds"]
    doc = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": pyplatform.python_version(),
                    "kernel": pyplatform.release(), "loadavg_before": load_before,
                    "loadavg_after": load_after},
        "setup": {"tmp": str(tmp.parent), "replicas": args.replicas, "target_concurrency": target,
                  "runner_capacity": (args.replicas * int(target)) if target else None,
                  "watch_interval": args.watch_interval, "body": BODY.decode(),
                  "direct_concurrency": args.concurrency, "direct_duration_s": args.duration,
                  "client": "httpx.AsyncClient, keep-alive, in the benchmark process"},
        "direct": {"wrk_rounds": [w1, w2], "httpx_rounds": [d1, d2], "rps_mean": direct_rps,
                   "per_request_ms": direct_ms, "httpx_per_request_ms": httpx_ms},
        "jobs": {"put": put, "wrk": wk, "multipart": mp, "drop": dr},
        "job_latency": lat,
        "files_baseline": fsb,
        "files_baseline_fsync_each": fsb64,
        "files_baseline_one_by_one": fsb1,
        "queue_vs_direct": compare,
        "idle_with_objects_in_bucket": [
            {"objects": args.jobs + wk["jobs"], **idle.as_dict()},
            {"objects": 3 * args.jobs + wk["jobs"], **idle2.as_dict()}],
        "batch": {"inputs": n_batch, "cli_concurrency": 16, "run1": b1, "run2_all_done": b2,
                  "inprocess_loop": loop,
                  "cli_over_loop_time": b1["seconds"] / loop["seconds"],
                  "cli_throughput_share_of_loop": b1["inputs_per_s"] / loop["inputs_per_s"]},
        "replica_restarts": restarts,
        "elapsed_s": time.time() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(render(doc))
    try:
        shown = args.out.resolve().relative_to(ROOT)
    except ValueError:
        shown = args.out
    print(f"\nJSON: {shown}", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)  # ~40,000 small files: takes a few seconds
    bad = (put["failed"] or mp["failed"] or put["enqueue_errors"] or mp["enqueue_errors"]
           or dr["failed"]
           or wk["failed"] or wk["enqueue_errors"]
           or d1["errors"] or d2["errors"] or w1["errors"] or w2["errors"]
           or b1["returncode"] or b2["returncode"]
           or b1["outputs"] != n_batch)
    return 1 if bad else 0


def render(doc: dict[str, Any]) -> str:
    m, s = doc["machine"], doc["setup"]
    out = [f"modelplane async jobs — {m['cpus']} CPUs, loadavg {m['loadavg_before'][0]:.2f}"
           f"→{m['loadavg_after'][0]:.2f}; echo, dedicated, {s['replicas']} replicas "
           f"(target_concurrency {s['target_concurrency']}: the runner keeps "
           f"{s['runner_capacity']} jobs in flight), watch interval {s['watch_interval']} s, "
           f"data under {s.get('tmp', '?')}",
           f"body: {s['body']} (application/json)", ""]
    J, D = doc["jobs"], doc["direct"]

    def f(x: float | None, fmt: str = "8.0f") -> str:
        return format(x, fmt) if x is not None else "       -"

    out.append("1. Jobs through the whole path (upload -> queue -> replica -> output bucket)")
    out.append(f"  {'enqueue path':40s} {'enqueue/s':>9s} {'e2e jobs/s':>10s} {'steady':>8s} "
               f"{'drain':>8s} {'all done':>9s} {'failed':>6s}  {'other load':>10s}")
    for k, label in (("put", "PUT one object per request, 8 in flight"),
                     ("wrk", "PUT from wrk (a C client), 8 in flight"),
                     ("multipart", f"multipart POST, {J['multipart']['files_per_request']} "
                                   f"files/req, {J['multipart']['enqueue_concurrency']} "
                                   "in flight"),
                     ("drop", "files renamed into the bucket folder")):
        r = J[k]
        label = label.replace(" 8 in flight", f" {r['enqueue_concurrency']} in flight")
        out.append(f"  {label:40s} {r['enqueue_jobs_per_s']:9.0f} "
                   f"{r['end_to_end_jobs_per_s']:10.1f} {f(r['steady_jobs_per_s'], '8.1f')} "
                   f"{f(r['drain_jobs_per_s'], '8.1f')} {r['all_done_s']:8.1f}s "
                   f"{r['failed']:6d}  {r['cpu']['other_load_cores']:6.2f} cores")
    out.append(f"  {J['put']['jobs']} jobs each. e2e: first upload -> all succeeded; steady: "
               "10% -> 90% succeeded;")
    out.append("  drain: after the last upload returned (if >= 10% were still waiting). "
               "other load: "
               "busy CPU of the machine")
    out.append("  minus the platform, replicas and this benchmark (kernel I/O work such as ext4 "
               "journaling counts there).")
    out.append("  CPU per job (platform process, of it in the kernel / replicas): "
               + ", ".join(f"{k} {J[k]['cpu']['platform_cpu_ms_per_item']:.2f} "
                           f"({J[k]['cpu']['platform_kernel_ms_per_item']:.2f}) / "
                           f"{J[k]['cpu']['replicas_cpu_ms_per_item']:.2f} ms" for k in J))
    fsb = doc.get("files_baseline")
    if fsb:
        mp_cpu = J["multipart"]["cpu"]["platform_cpu_ms_per_item"]
        two = 2 * fsb["cpu_ms_per_file"]
        out.append(f"  the filesystem alone (this process, just before the multipart run): "
                   f"{fsb['files_per_s']:.0f} files/s, {fsb['cpu_ms_per_file']:.3f} ms CPU per "
                   f"file ({fsb['kernel_ms_per_file']:.3f} kernel);")
        out.append(f"  a job makes two files: {two:.2f} ms of multipart's {mp_cpu:.2f} ms per job "
                   f"is creating them, {mp_cpu - two:.2f} ms the platform's own")
        for key, what in (("files_baseline_fsync_each", "groups of 64 with an fsync each "
                                                         "(as before syncfs)"),
                          ("files_baseline_one_by_one", "each file flushed on its own (as "
                                                        "before put_many)")):
            one = doc.get(key)
            if one:
                out.append(f"  {what}: {one['files_per_s']:.0f} files/s, "
                           f"{one['cpu_ms_per_file']:.3f} ms CPU per file (the machine's "
                           f"{one['machine_ms_per_file']:.3f}), "
                           f"{one['cpu_ms_per_file'] / fsb['cpu_ms_per_file']:.2f}x the store's way "
                           f"({fsb['machine_ms_per_file']:.3f} ms of the machine's)")
    out.append("")
    out.append("  per-job latency from the job list (ms)        p50      p90      p99      max")
    for k in ("put", "wrk", "multipart", "drop"):
        L = doc["job_latency"][k]
        for key, name in (("created_to_finished_ms", "created -> finished"),
                          ("created_to_started_ms", "created -> started (queue wait)"),
                          ("started_to_finished_ms", "started -> finished (run + write)")):
            d = L[key]
            out.append(f"  {k:9s} {name:34s} {d['p50']:8.1f} {d['p90']:8.1f} {d['p99']:8.1f} "
                       f"{d['max']:8.1f}")
    out.append("  (created_at is stamped when the upload is stored, so with a backlog the queue "
               "wait dominates)")
    out.append("")
    out.append(f"2. Queue overhead per job vs. calling the replica directly "
               f"(POST .../echo/predict, same body, {s['direct_concurrency']} in flight)")
    w1, w2 = D["wrk_rounds"]
    d1, d2 = D["httpx_rounds"]
    out.append(f"  direct, wrk -t1 -c{s['direct_concurrency']}: {w1['rps']:.0f} / {w2['rps']:.0f}"
               f" req/s (before / after the jobs), p50 {w1['latency_ms']['p50']:.2f} / "
               f"{w2['latency_ms']['p50']:.2f} ms, platform CPU "
               f"{w1['cpu']['platform_cpu_ms_per_item']:.3f} ms/request")
    out.append(f"  direct, httpx (the uploads' client): {d1['rps']:.0f} / {d2['rps']:.0f} req/s, "
               f"p50 {d1['latency_ms']['p50']:.1f} / {d2['latency_ms']['p50']:.1f} ms "
               "(client-bound: this process's CPU is the limit)")
    out.append(f"  {'':10s} {'job time':>9s} {'direct':>8s} {'overhead':>9s} {'ratio':>6s}   "
               f"{'vs httpx: overhead':>18s} {'ratio':>6s}   "
               f"{'platform CPU per job / per request':>34s}")
    for k, c in doc["queue_vs_direct"].items():
        out.append(f"  {k:10s} {c['job_ms']:7.2f}ms {c['direct_ms']:6.3f}ms "
                   f"{c['overhead_ms']:+7.2f}ms {c['ratio']:5.0f}x   "
                   f"{c['overhead_vs_httpx_ms']:+16.2f}ms {c['ratio_vs_httpx']:5.1f}x   "
                   f"{c['platform_cpu_ms_per_job']:13.2f} / "
                   f"{c['platform_cpu_ms_per_direct_request']:.3f} ms = "
                   f"{c['cpu_ratio']:.0f}x")
    out.append("  job time = 1 / steady jobs/s; direct = 1 / req/s, mean of the two rounds; "
               "overhead = job - direct")
    for idle in doc["idle_with_objects_in_bucket"]:
        out.append(f"  idle platform with {idle['objects']} objects in the input bucket: "
                   f"{idle['platform_cpu_s'] / idle['wall_s']:.2f} cores of CPU "
                   f"(local buckets: the kernel's file events, no rescans; S3 would be listed "
                   f"every {s['watch_interval']} s)")
    out.append("")
    B = doc["batch"]
    b1, b2, lp = B["run1"], B["run2_all_done"], B["inprocess_loop"]
    out.append(f"3. Batch over {B['inputs']} small JSON files")
    out.append(f"  {'':64s} {'seconds':>8s} {'inputs/s':>9s} {'÷ loop':>7s}")
    out.append(f"  {'modelplane batch (CLI, concurrency 16), run 1':64s} {b1['seconds']:8.2f} "
               f"{b1['inputs_per_s']:9.0f} {b1['inputs_per_s'] / lp['inputs_per_s']:7.3f}")
    out.append(f"  {'modelplane batch, run 2 (everything already done)':64s} "
               f"{b2['seconds']:8.2f} {b2['inputs_per_s']:9.0f}")
    out.append(f"  {'plain Python loop, in-process (read/loads/predict/dumps/write)':64s} "
               f"{lp['seconds']:8.2f} {lp['inputs_per_s']:9.0f} {1:7.3f}")
    out.append(f"  batch run 1 takes {B['cli_over_loop_time']:.0f}x the loop's time; "
               f"other load during run 1: {b1['cpu']['other_load_cores']:.2f} cores; "
               f"exit codes {b1['returncode']}/{b2['returncode']}, outputs {b1['outputs']}")
    if doc.get("replica_restarts"):
        out.append(f"NOTE: {doc['replica_restarts']} replica restart(s) during the run")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
