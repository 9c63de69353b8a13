"""Soak: the platform under a steady mixed load for minutes; errors, memory and descriptors.

Run from the repository root (not in CI):

    .venv/bin/python bench/soak.py                  # 10 minutes at half the measured capacity
    .venv/bin/python bench/soak.py --minutes 2      # a quick proof that it works

One platform (``modelplane up``, fresh data dir, free 127.0.0.1 port) with a dedicated
deployment ``echo`` of examples/echo, 2 replicas, input bucket ``echo-in`` (every object put
there becomes a job), output bucket ``echo-out``. The load is a fixed mix, in this order per ten
operations (`--mix`, 8,1,1): 8 sync predicts (``POST /api/v1/deployments/echo/predict``), 1 upload
(``PUT /api/v1/buckets/echo-in/objects/soak/N.json``, a job), 1 API call (in turn: the
deployment's status, its latest jobs, the list of deployments).

1. capacity: the same mix, closed loop at ``--concurrency`` for ``--measure`` seconds (after a
   second of warm-up): operations/s. It is the capacity of the platform *as driven from this
   Python client* on this machine, which is the load the soak then applies a fraction of.
2. soak: ``--fraction`` (0.5) of that rate, paced (open loop, at most 64 in flight), for
   ``--minutes``; every ``--sample`` (5) seconds the RSS and open descriptors of the platform
   process and of each replica (pids from the deployment's status) are read from /proc.
3. drain: every uploaded job must finish; a failed job counts as an error.

Printed: errors (must be 0), per process the RSS from minute 2 to the end (goal: within +5 %;
with fewer than 4 minutes the baseline is the run's midpoint instead), descriptors at the
baseline, at the end and their range after it (flat: the end within 4 of the baseline). Written:
bench/results/soak.json (every sample) and bench/results/soak.png (RSS and descriptors against
time; needs matplotlib, the ``plot`` extra). Exit status 1 if any error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dataplane import (  # bench/ is not a package
    ROOT,
    process_cpu_s,
    rss_bytes,
    terminate_as_exit,
)
from jobs import BODY, JSON_CT, Platform, log, pct

RESULTS = ROOT / "bench" / "results"
MIB = 1024 * 1024
IN_FLIGHT = 64
RSS_GOAL = 0.05
FD_SLACK = 4
CLIENT_IDLE_S = 4.0
"""Seconds the client keeps an idle connection: less than the platform's keep-alive timeout."""
KINDS = ("predict", "upload", "api")


def fd_counts(pid: int) -> tuple[int | None, int | None]:
    """Open descriptors of ``pid``: all of them, and how many are sockets."""
    base = f"/proc/{pid}/fd"
    try:
        names = os.listdir(base)
    except OSError:
        return None, None
    sockets = 0
    for name in names:
        with contextlib.suppress(OSError):  # closed meanwhile
            sockets += os.readlink(f"{base}/{name}").startswith("socket:")
    return len(names), sockets


@dataclass
class Load:
    """The mixed operations, their outcomes and latencies."""

    http: httpx.AsyncClient
    counter: itertools.count[int]
    mix: tuple[str, ...] = ("predict",) * 8 + ("upload", "api")
    ok: dict[str, int] = field(default_factory=lambda: {"predict": 0, "upload": 0, "api": 0})
    errors: dict[str, int] = field(default_factory=lambda: {"predict": 0, "upload": 0, "api": 0})
    samples: list[str] = field(default_factory=list)
    latency: dict[str, list[float]] = field(
        default_factory=lambda: {"predict": [], "upload": [], "api": []}
    )

    async def one(self) -> None:
        i = next(self.counter)
        kind = self.mix[i % len(self.mix)]
        t = time.perf_counter()
        try:
            if kind == "predict":
                r = await self.http.post(
                    "/api/v1/deployments/echo/predict", content=BODY, headers=JSON_CT
                )
                good = r.status_code == 200 and r.content.startswith(b'{"inputs"')
            elif kind == "upload":
                r = await self.http.put(
                    f"/api/v1/buckets/echo-in/objects/soak/{i:08d}.json",
                    content=BODY,
                    headers=JSON_CT,
                )
                good = r.status_code == 201
            else:
                path = (
                    "/api/v1/deployments/echo",
                    "/api/v1/deployments/echo/jobs?limit=5",
                    "/api/v1/deployments",
                )[(i // len(self.mix)) % 3]
                r = await self.http.get(path)
                good = r.status_code == 200
            what = f"{kind}: {r.status_code} {r.text[:160]}"
        except httpx.HTTPError as exc:
            good, what = False, f"{kind}: {type(exc).__name__}: {exc}"
        if good:
            self.ok[kind] += 1
            self.latency[kind].append(time.perf_counter() - t)
        else:
            self.errors[kind] += 1
            if len(self.samples) < 10:
                self.samples.append(what)

    def done(self) -> int:
        return sum(self.ok.values()) + sum(self.errors.values())


async def closed_loop(load: Load, concurrency: int, seconds: float) -> float:
    """Operations/s with ``concurrency`` callers each sending the next as soon as one returns."""
    stop = time.monotonic() + seconds
    before = load.done()

    async def caller() -> None:
        while time.monotonic() < stop:
            await load.one()

    t0 = time.monotonic()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return (load.done() - before) / (time.monotonic() - t0)


async def paced(load: Load, rate: float, seconds: float) -> float:
    """``rate`` operations/s for ``seconds``; returns how far behind schedule it ended (s)."""
    room = asyncio.Semaphore(IN_FLIGHT)
    tasks: set[asyncio.Task[None]] = set()
    start = time.monotonic()
    n = 0

    async def run() -> None:
        try:
            await load.one()
        finally:
            room.release()

    while (due := start + n / rate) < start + seconds:
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await room.acquire()
        task = asyncio.create_task(run())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
    behind = max(0.0, time.monotonic() - (start + n / rate))
    if tasks:
        await asyncio.gather(*tasks)
    return behind


async def sampler(
    plat: Platform,
    http: httpx.AsyncClient,
    every: float,
    t0: float,
    out: list[dict[str, Any]],
    load: Load,
) -> None:
    """Every ``every`` s: RSS, descriptors and CPU seconds of the platform and of each replica,
    and how many operations were done by then."""
    while True:
        r = await http.get("/api/v1/deployments/echo")
        replicas = r.json()["status"].get("replicas", []) if r.status_code == 200 else []
        procs = {"platform": plat.server.pid}
        procs.update({f"replica {x['id']}": int(x["pid"]) for x in replicas if x.get("pid")})
        row: dict[str, Any] = {"t": round(time.monotonic() - t0, 1), "ops": load.done()}
        row["procs"] = {}
        for name, pid in procs.items():
            fds, sockets = fd_counts(pid)
            row["procs"][name] = {
                "pid": pid,
                "rss": rss_bytes(pid),
                "fds": fds,
                "sockets": sockets,
                "cpu_s": process_cpu_s([pid]),
            }
        out.append(row)
        await asyncio.sleep(every)


async def drain(http: httpx.AsyncClient, uploads: int, deadline_s: float) -> dict[str, int]:
    """Wait until every job has finished; the final counts."""
    stop = time.monotonic() + deadline_s
    while True:
        r = await http.get("/api/v1/deployments/echo/jobs", params={"limit": 1})
        counts = {k: int(v) for k, v in r.json()["counts"].items()}
        finished = counts.get("succeeded", 0) + counts.get("failed", 0)
        if counts.get("queued", 0) + counts.get("running", 0) == 0 and finished >= uploads:
            return counts
        if time.monotonic() > stop:
            raise TimeoutError(f"jobs not finished within {deadline_s:.0f} s: {counts}")
        await asyncio.sleep(0.5)


def series(samples: list[dict[str, Any]], key: str) -> dict[str, list[tuple[float, int]]]:
    out: dict[str, list[tuple[float, int]]] = {}
    for row in samples:
        for name, p in row["procs"].items():
            if p[key] is not None:
                out.setdefault(name, []).append((row["t"], p[key]))
    return out


def verdicts(
    samples: list[dict[str, Any]], baseline_t: float, client_connections: int
) -> list[dict[str, Any]]:
    """Per process: RSS and descriptors at the baseline and at the end. Descriptors are flat
    when the end is within FD_SLACK of the baseline, sockets apart: those may differ by the
    client's own connections too (idle ones are closed by the server after 5 s, then opened
    again), which is no leak."""
    rss, fds, socks = series(samples, "rss"), series(samples, "fds"), series(samples, "sockets")
    out = []
    for name, points in rss.items():
        after = [(t, v) for t, v in points if t >= baseline_t]
        fd_after = [(t, v) for t, v in fds.get(name, []) if t >= baseline_t]
        if len(after) < 2 or len(fd_after) < 2:
            out.append({"process": name, "note": "not alive long enough after the baseline"})
            continue
        (_, r0), (_, r1) = after[0], after[-1]
        f0, f1 = fd_after[0][1], fd_after[-1][1]
        fd_values = [v for _, v in fd_after]
        sock_after = [v for t, v in socks.get(name, []) if t >= baseline_t] or [0]
        s0, s1 = sock_after[0], sock_after[-1]
        files_delta = (f1 - s1) - (f0 - s0)
        flat = abs(files_delta) <= FD_SLACK and abs(s1 - s0) <= FD_SLACK + client_connections
        out.append(
            {
                "process": name,
                "rss_baseline_mib": r0 / MIB,
                "rss_end_mib": r1 / MIB,
                "rss_growth": (r1 - r0) / r0,
                "rss_ok": (r1 - r0) / r0 <= RSS_GOAL,
                "fds_baseline": f0,
                "fds_end": f1,
                "fds_min": min(fd_values),
                "fds_max": max(fd_values),
                "sockets_baseline": s0,
                "sockets_end": s1,
                "fds_flat": flat,
            }
        )
    return out


def cpu_per_op(samples: list[dict[str, Any]], name: str) -> float | None:
    """CPU milliseconds ``name`` spent per operation, from the first sample to the last."""
    rows = [(r["ops"], r["procs"][name]["cpu_s"]) for r in samples if name in r["procs"]]
    if len(rows) < 2 or rows[-1][0] == rows[0][0]:
        return None
    return 1000 * (rows[-1][1] - rows[0][1]) / (rows[-1][0] - rows[0][0])


def plot(samples: list[dict[str, Any]], baseline_t: float, path: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib is not installed (pip install -e '.[plot]')"
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    for name, points in series(samples, "rss").items():
        top.plot([t / 60 for t, _ in points], [v / MIB for _, v in points], label=name)
    for name, points in series(samples, "fds").items():
        bottom.plot([t / 60 for t, _ in points], [v for _, v in points], label=name)
    for ax in (top, bottom):
        ax.axvline(baseline_t / 60, color="grey", linestyle=":", linewidth=1)
        ax.grid(alpha=0.3)
    top.set_ylabel("RSS (MiB)")
    top.set_title("modelplane soak: platform and replicas (dotted: the baseline)")
    top.legend(fontsize=8)
    bottom.set_ylabel("open file descriptors")
    bottom.set_xlabel("minutes into the soak")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"plot: {path}"


async def soak(plat: Platform, args: argparse.Namespace) -> dict[str, Any]:
    # At most --concurrency kept-alive connections (all opened by the capacity run). The client
    # lets an idle one go after 4 s, before the platform closes it (5 s idle): a request sent on a
    # connection just as the server closes it would fail with a ReadError (a 2-minute run on a
    # loaded machine saw one), a race of the client's making, not an error of the platform.
    limits = httpx.Limits(
        max_connections=args.concurrency,
        max_keepalive_connections=args.concurrency,
        keepalive_expiry=CLIENT_IDLE_S,
    )
    async with (
        httpx.AsyncClient(
            base_url=plat.base, headers=plat.server.headers, limits=limits, timeout=30
        ) as http,
        httpx.AsyncClient(base_url=plat.base, headers=plat.server.headers, timeout=30) as probe,
    ):
        keys = itertools.count()  # object names unique across the phases
        mix = tuple(k for k, n in zip(KINDS, args.mix, strict=True) for _ in range(n))
        warm = Load(http, keys, mix)
        await closed_loop(warm, args.concurrency, 1.0)
        measure = Load(http, keys, mix)
        capacity = await closed_loop(measure, args.concurrency, args.measure)
        rate = args.rate or capacity * args.fraction
        seconds = args.minutes * 60
        log(
            f"capacity {capacity:.0f} ops/s (errors {sum(measure.errors.values())}); soaking at "
            f"{rate:.0f} ops/s for {args.minutes:g} min"
        )
        load = Load(http, keys, mix)
        samples: list[dict[str, Any]] = []
        t0 = time.monotonic()
        watch = asyncio.create_task(sampler(plat, probe, args.sample, t0, samples, load))
        try:
            behind = await paced(load, rate, seconds)
        finally:
            watch.cancel()
        uploads = sum(x.ok["upload"] for x in (warm, measure, load))
        counts = await drain(probe, uploads, 120)
    failed_jobs = counts.get("failed", 0)
    baseline_t = 120.0 if seconds >= 240 else seconds / 2
    return {
        "capacity_ops_per_s": capacity,
        "capacity_errors": sum(measure.errors.values()) + sum(warm.errors.values()),
        "rate_ops_per_s": rate,
        "minutes": args.minutes,
        "ops": load.done(),
        "ok": load.ok,
        "errors": load.errors,
        "failed_jobs": failed_jobs,
        "jobs": counts,
        "error_samples": (warm.samples + measure.samples + load.samples)[:10],
        "behind_schedule_s": behind,
        "latency_ms": {
            k: {"p50": 1000 * pct(v, 50), "p99": 1000 * pct(v, 99)} for k, v in load.latency.items()
        },
        "baseline_s": baseline_t,
        "processes": verdicts(samples, baseline_t, args.concurrency + 1),
        "platform_cpu_ms_per_op": cpu_per_op(samples, "platform"),
        "samples": samples,
    }


def report(doc: dict[str, Any]) -> str:
    errors = sum(doc["errors"].values()) + doc["failed_jobs"] + doc["capacity_errors"]
    lines = [
        f"capacity (closed loop): {doc['capacity_ops_per_s']:.0f} ops/s; soak at "
        f"{doc['rate_ops_per_s']:.0f} ops/s for {doc['minutes']:g} min "
        f"({doc['ops']} ops, {doc['behind_schedule_s']:.1f} s behind schedule at the end)",
        f"ok: {doc['ok']}; jobs: {doc['jobs']}",
        f"errors: {errors} (predict {doc['errors']['predict']}, upload {doc['errors']['upload']}"
        f", api {doc['errors']['api']}, failed jobs {doc['failed_jobs']}, during the capacity "
        f"run {doc['capacity_errors']})",
    ]
    lines += [f"  {s}" for s in doc["error_samples"]]
    lat = doc["latency_ms"]
    lines.append(
        "latency p50/p99 ms: "
        + ", ".join(f"{k} {v['p50']:.1f}/{v['p99']:.1f}" for k, v in lat.items())
    )
    if doc.get("platform_cpu_ms_per_op") is not None:
        lines.append(f"platform CPU: {doc['platform_cpu_ms_per_op']:.2f} ms per operation")
    lines.append(
        f"from {doc['baseline_s'] / 60:g} min to the end (goal: RSS within +5 %, fds flat):"
    )
    lines.append(
        f"  {'process':<22} {'RSS MiB':>17} {'growth':>8}  {'fds':>9} {'range':>9} {'sockets':>9}"
    )
    for p in doc["processes"]:
        if "note" in p:
            lines.append(f"  {p['process']:<22} {p['note']}")
            continue
        lines.append(
            f"  {p['process']:<22} {p['rss_baseline_mib']:7.1f} -> {p['rss_end_mib']:6.1f} "
            f"{100 * p['rss_growth']:+7.1f}%{'' if p['rss_ok'] else '!'} "
            f"{p['fds_baseline']:4d} -> {p['fds_end']:<4d} {p['fds_min']:4d}-{p['fds_max']:<4d} "
            f"{p['sockets_baseline']:4d} -> {p['sockets_end']:<4d} "
            f"{'flat' if p['fds_flat'] else 'NOT FLAT'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the soak [10]")
    ap.add_argument("--fraction", type=float, default=0.5, help="of the capacity [0.5]")
    ap.add_argument(
        "--rate",
        type=float,
        help="soak at this many ops/s instead of --fraction of the capacity (for A/B runs)",
    )
    ap.add_argument("--measure", type=float, default=5.0, help="capacity run, seconds [5]")
    ap.add_argument("--concurrency", type=int, default=16, help="of the capacity run [16]")
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between samples [5]")
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument(
        "--mix",
        type=lambda v: tuple(int(x) for x in v.split(",")),
        default=(8, 1, 1),
        help="predicts,uploads,API calls per round [8,1,1]; e.g. 1,0,0 to soak predicts alone",
    )
    ap.add_argument(
        "--trace",
        type=Path,
        help="run the platform under bench/memtrace.py, writing its memory snapshots here",
    )
    ap.add_argument("--trace-every", type=float, default=30.0, help="seconds between them [30]")
    ap.add_argument(
        "--trace-lite",
        action="store_true",
        help="with --trace: no tracemalloc (full speed); RSS, malloc, SQLite, object counts",
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "soak.json")
    ap.add_argument("--plot", type=Path, default=RESULTS / "soak.png")
    args = ap.parse_args(argv)
    if args.minutes <= 0 or not 0 < args.fraction <= 1 or args.measure < 1:
        ap.error("--minutes must be > 0, --fraction in (0, 1], --measure >= 1")
    if args.rate is not None and args.rate <= 0:
        ap.error("--rate must be > 0")
    if len(args.mix) != 3 or min(args.mix) < 0 or sum(args.mix) == 0:
        ap.error("--mix is three counts, e.g. 8,1,1")

    tmp = Path(tempfile.mkdtemp(prefix="mp-bench-soak-"))
    plat = Platform(tmp, args.replicas, watch_interval=1.0)
    if args.trace is not None:  # the same `modelplane up` command, inside the memory tracer
        wrapper = [sys.executable, str(ROOT / "bench" / "memtrace.py")]
        wrapper += [str(args.trace.resolve()), str(args.trace_every)]
        wrapper += ["--no-tracemalloc", "--"] if args.trace_lite else ["--"]
        plat.server.argv = wrapper + plat.server.argv[1:]
    try:
        with terminate_as_exit():
            log(f"starting the platform (data dir {plat.data_dir}) and deploying echo")
            plat.start()
            doc = asyncio.run(soak(plat, args))
    finally:
        plat.server.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(report(doc))
    print(plot(doc["samples"], doc["baseline_s"], args.plot))
    print(f"samples: {args.out}")
    if args.trace is not None:
        snaps = sorted(args.trace.glob("[0-9][0-9][0-9].json"))
        if len(snaps) >= 2:
            print(
                f"memory traces: {args.trace} ({len(snaps)}); what grew: .venv/bin/python "
                f"bench/memtrace.py --diff {args.trace} 1 {len(snaps)}"
            )
    errors = sum(doc["errors"].values()) + doc["failed_jobs"] + doc["capacity_errors"]
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
