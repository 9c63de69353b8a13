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
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dataplane as dp
from rawclient import descendants


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
            for _ in range(args.runs):
                for key in keys:
                    plat = plats[key.split("/")[0]]
                    replicas = [p for p in descendants(plat.pid) if p != plat.pid]
                    p0 = dp.process_cpu_s([plat.pid])
                    r0 = dp.process_cpu_s(replicas)
                    w = dp.wrk(servers[key], scripts[key], args.connections, args.duration)
                    p1 = dp.process_cpu_s([plat.pid])
                    r1 = dp.process_cpu_s(replicas)
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
        finally:
            for plat in plats.values():
                plat.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
