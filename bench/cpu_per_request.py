"""CPU per request of the platform's predict paths: an A/B measure that holds on a busy machine.

    .venv/bin/python bench/cpu_per_request.py                  # 5 runs x 3 s per path
    .venv/bin/python bench/cpu_per_request.py --runs 3 --duration 2 --paths native

Starts ``modelplane up`` with the echo deployment (2 replicas) and the OSCAR service over it, as
``bench/dataplane.py`` does, then drives each path with ``wrk -t1 -c16`` and divides the CPU the
platform process and the replica processes used (utime + stime from ``/proc/PID/stat``) by the
requests wrk counted. Wall-clock req/s on a shared 2-core machine moves with everyone else's
load; the CPU a request costs moves far less, and with wrk holding one core the platform's
throughput is about inversely proportional to it. Prints the median of the runs, the platform
process and the replicas apart.

``--syscalls`` also counts the system calls each side made per request, by name (``perf stat``
on the ``syscalls:sys_enter_*`` tracepoints, attached to the platform and to the replicas for
each run; needs ``perf`` and root or ``perf_event_paranoid`` <= 1). Tracing every syscall makes
each one dearer, so the CPU figures of such a run are above an untraced run's: compare them only
with each other.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dataplane as dp
from rawclient import descendants


def count_syscalls(pids: list[int], out: Path) -> subprocess.Popen[bytes]:
    """``perf stat`` counting every syscall of ``pids`` into ``out`` until it is sent SIGINT."""
    argv = [
        "perf",
        "stat",
        "-x,",
        "-o",
        str(out),
        "-e",
        "syscalls:sys_enter_*",
        "-p",
        ",".join(map(str, pids)),
    ]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_counting(perf: subprocess.Popen[bytes], out: Path) -> dict[str, int]:
    perf.send_signal(signal.SIGINT)
    perf.wait(timeout=30)
    counts: dict[str, int] = {}
    for line in out.read_text().splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[0].strip().isdigit() and int(fields[0]):
            name = fields[2].removeprefix("syscalls:sys_enter_")
            counts[name] = counts.get(name, 0) + int(fields[0])
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--paths", default="native,oscar")
    ap.add_argument(
        "--base",
        type=Path,
        default=None,
        help="a src/ folder of another tree (say `git archive main src`): its platform "
        "runs beside this one's (PYTHONPATH), and the runs alternate between them",
    )
    ap.add_argument(
        "--syscalls",
        action="store_true",
        help="also count syscalls per request by name (perf stat; makes the CPU figures dearer)",
    )
    args = ap.parse_args(argv)
    paths = args.paths.split(",")
    trees = ["this"] + (["base"] if args.base else [])
    with tempfile.TemporaryDirectory(prefix="mp-cpu-") as tmp_s:
        tmp = Path(tmp_s)
        plats: dict[str, dp.Server] = {}
        servers: dict[str, dp.Server] = {}
        try:
            for tree in trees:
                sub = tmp / tree
                sub.mkdir()
                saved = os.environ.get("PYTHONPATH")
                if tree == "base":
                    os.environ["PYTHONPATH"] = str(args.base.resolve())
                try:
                    plat, info = dp.start_platform(sub, 2)
                    plats[tree] = plat
                    servers[f"{tree}/native"] = plat
                    if "oscar" in paths:
                        oscar = dp.start_oscar_service(plat, info, 2)
                        oscar.key = f"{tree}-oscar"
                        servers[f"{tree}/oscar"] = oscar
                finally:
                    if saved is None:
                        os.environ.pop("PYTHONPATH", None)
                    else:
                        os.environ["PYTHONPATH"] = saved
                plat.key = f"{tree}-native"
            keys = [f"{t}/{p}" for p in paths for t in trees]
            scripts = {k: dp.lua_script(servers[k], tmp) for k in keys}
            for key in keys:  # warm-up
                dp.wrk(servers[key], scripts[key], args.connections, 1.0)
            results: dict[str, list[tuple[float, float, float]]] = {k: [] for k in keys}
            calls: dict[str, list[tuple[dict[str, int], dict[str, int], int]]] = {
                k: [] for k in keys
            }
            for _ in range(args.runs):
                for key in keys:
                    plat = plats[key.split("/")[0]]
                    replicas = [p for p in descendants(plat.pid) if p != plat.pid]
                    if args.syscalls:
                        sides_at = (([plat.pid], tmp / "p.perf"), (replicas, tmp / "r.perf"))
                        counters = [(count_syscalls(pids, out), out) for pids, out in sides_at]
                        time.sleep(0.3)  # perf attached before the run starts
                    p0 = dp.process_cpu_s([plat.pid])
                    r0 = dp.process_cpu_s(replicas)
                    w = dp.wrk(servers[key], scripts[key], args.connections, args.duration)
                    p1 = dp.process_cpu_s([plat.pid])
                    r1 = dp.process_cpu_s(replicas)
                    if args.syscalls:
                        sides = [stop_counting(perf, out) for perf, out in counters]
                        calls[key].append((sides[0], sides[1], w["requests"]))
                    if w["errors"]:
                        print(f"{key}: {w['errors']} errors", file=sys.stderr)
                        return 1
                    n = w["requests"]
                    results[key].append(((p1 - p0) / n * 1e6, (r1 - r0) / n * 1e6, w["rps"]))
            print(f"load average {dp.os.getloadavg()[0]:.2f}")
            print(
                f"{'path':12s} {'platform us/req':>16s} {'replicas us/req':>16s} "
                f"{'total us/req':>13s} {'req/s':>8s}   (median of {args.runs} runs)"
            )
            for key in keys:
                rows = results[key]
                pl = statistics.median(r[0] for r in rows)
                rp = statistics.median(r[1] for r in rows)
                tot = statistics.median(r[0] + r[1] for r in rows)
                rps = statistics.median(r[2] for r in rows)
                spread = sorted(round(r[0] + r[1], 1) for r in rows)
                print(f"{key:12s} {pl:16.1f} {rp:16.1f} {tot:13.1f} {rps:8.0f}   totals {spread}")
            for key in keys if args.syscalls else []:
                for side, label in ((0, "platform"), (1, "replicas")):
                    runs = calls[key]
                    total = statistics.median(sum(r[side].values()) / r[2] for r in runs)
                    names = sorted(
                        {n for r in runs for n in r[side]},
                        key=lambda n: -sum(r[side].get(n, 0) for r in runs),
                    )
                    top = "  ".join(
                        f"{n} {statistics.median(r[side].get(n, 0) / r[2] for r in runs):.3f}"
                        for n in names[:6]
                    )
                    print(f"{key:12s} syscalls/req {label:8s} {total:5.2f}: {top}")
        finally:
            for plat in plats.values():
                plat.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
