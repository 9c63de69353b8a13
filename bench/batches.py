"""Server-side batch runs against a plain in-process Python loop over the same files, one run.

Run from the repository root:

    .venv/bin/python bench/batches.py                # 10,000 echo inputs, 3 x 1,000 CPU-bound
    .venv/bin/python bench/batches.py --inputs 2000 --cpu-inputs 200 --cpu-rounds 1

Two figures, each beside its baseline measured in the same run:

1. **Small files**: ``--inputs`` small JSON files through ``examples/echo`` on 2 dedicated
   replicas, as a batch run (``POST /api/v1/batches`` with a folder in and a folder out; the
   platform reads, predicts and writes), from the POST until the run is finished, against a loop
   in this process that reads each file, ``json.loads``, calls ``Echo.predict``, ``json.dumps``
   and writes the result. Goal: batch ÷ loop ≥ 0.5.
2. **A CPU-bound model**: ``--cpu-inputs`` inputs through a model that spins the CPU for
   ``--cpu-ms`` (5) per input, on 2 replicas, against the same model in a one-process loop: what
   the replicas buy when the model, not the platform, is the cost. Goal >= 1.7x on 2 cores.
   ``--cpu-rounds`` (3) rounds, batch and loop alternating first; the figure is the median
   round's ratio (1,000 inputs a round: a run of 2.5 s or more, so the fixed cost of starting
   and ending one is not what is measured).

The machine is shared and noisy: both figures are ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dataplane import process_cpu_s, terminate_as_exit  # bench/ is not a package
from jobs import ECHO_FOLDER, Platform

SPIN = '''
import time

class Spin:
    """Burns {ms} ms of CPU per input, like a small model's forward pass on the CPU."""

    def predict(self, inputs):
        end = time.process_time() + {ms} / 1000
        while time.process_time() < end:
            pass
        return inputs
'''


def write_inputs(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        body = b'{"inputs": [1, 2, 3], "name": "bench", "i": %d}' % i
        (folder / f"{i:05d}.json").write_bytes(body)


def loop(model: Any, src: Path, dst: Path) -> float:
    """The baseline: one process, one file after the other. Returns inputs per second."""
    dst.mkdir(parents=True)
    names = sorted(p.name for p in src.iterdir())
    t0 = time.perf_counter()
    for name in names:
        data = json.loads((src / name).read_bytes())
        (dst / (name + ".json")).write_bytes(json.dumps(model.predict(data)).encode())
    return len(names) / (time.perf_counter() - t0)


def batch_run(p: Platform, deployment: str, src: Path, dst: Path, n: int,
              pids: list[int] | None = None) -> dict[str, Any]:
    """One run, from the POST to its end; with ``pids`` (platform first, then its replicas),
    the CPU each used meanwhile."""
    pids = pids or []
    cpu0 = [process_cpu_s([pid]) for pid in pids]
    with httpx.Client(base_url=p.base, headers=p.server.headers, timeout=60) as http:
        t0 = time.perf_counter()
        r = http.post("/api/v1/batches",
                      json={"deployment": deployment, "input": str(src), "output": str(dst)})
        r.raise_for_status()
        batch_id = r.json()["id"]
        while True:
            # held by the platform until the run ends: the end is seen the moment it comes,
            # without a poll every few ms taking the platform's CPU from the run
            run = http.get(f"/api/v1/batches/{batch_id}", params={"wait": 30}).json()
            if run["finished_at"]:
                break
        wall = time.perf_counter() - t0
    cpu = [process_cpu_s([pid]) - c for pid, c in zip(pids, cpu0, strict=True)]
    if run["state"] != "succeeded" or run["done"] != n:
        raise RuntimeError(f"batch run ended {run['state']}: {run}")
    return {"seconds": wall, "inputs_per_s": n / wall, "run": run,
            "platform_us": 1e6 * cpu[0] / n if cpu else None,
            "replicas_us": 1e6 * sum(cpu[1:]) / n if cpu else None}


def load_class(folder: Path, module: str, cls: str) -> Any:
    sys.path.insert(0, str(folder))
    try:
        return getattr(__import__(module), cls)()
    finally:
        sys.path.remove(str(folder))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=10_000)
    ap.add_argument("--cpu-inputs", type=int, default=1000)
    ap.add_argument("--cpu-rounds", type=int, default=3, help="interleaved rounds, median [3]")
    ap.add_argument("--cpu-ms", type=float, default=5.0)
    ap.add_argument("--replicas", type=int, default=2)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mp-bench-batches-") as t, terminate_as_exit():
        tmp = Path(t)
        spin = tmp / "spin"
        spin.mkdir()
        (spin / "spin_model.py").write_text(SPIN.format(ms=args.cpu_ms))
        (spin / "modelplane.yaml").write_text("name: spin\nentrypoint: spin_model:Spin\n")
        write_inputs(tmp / "small", args.inputs)
        write_inputs(tmp / "cpu", args.cpu_inputs)
        p = Platform(tmp, replicas=args.replicas, watch_interval=5.0)
        try:
            p.boot()
            for name, folder in (("echo", ECHO_FOLDER), ("spin", spin)):
                p.deploy({"name": name, "mode": "dedicated", "model": {"path": str(folder)},
                          "scale": {"replicas": args.replicas}})
            batch_run(p, "echo", tmp / "cpu", tmp / "warm", args.cpu_inputs)  # warm-up
            pids = {name: [p.server.pid, *(int(r["pid"]) for r in p.status(name)["status"]
                                           ["replicas"] if r.get("pid"))]
                    for name in ("echo", "spin")}
            small = batch_run(p, "echo", tmp / "small", tmp / "small-out", args.inputs,
                              pids["echo"])
            small_loop = loop(load_class(ECHO_FOLDER, "echo_model", "Echo"), tmp / "small",
                              tmp / "small-loop")
            # The CPU-bound figure in interleaved rounds (the order flips each round): a burst
            # of the machine's other work then lands on one round of both sides, and the
            # figure is the median of the rounds' ratios.
            spin_model = load_class(spin, "spin_model", "Spin")
            rounds: list[tuple[dict[str, Any], float]] = []
            for i in range(args.cpu_rounds):
                out = tmp / f"cpu-out-{i}"
                if i % 2:
                    one_loop = loop(spin_model, tmp / "cpu", tmp / f"cpu-loop-{i}")
                    one = batch_run(p, "spin", tmp / "cpu", out, args.cpu_inputs, pids["spin"])
                else:
                    one = batch_run(p, "spin", tmp / "cpu", out, args.cpu_inputs, pids["spin"])
                    one_loop = loop(spin_model, tmp / "cpu", tmp / f"cpu-loop-{i}")
                rounds.append((one, one_loop))
            ratios = sorted(run["inputs_per_s"] / base for run, base in rounds)
            cpu, cpu_loop = sorted(rounds, key=lambda r: r[0]["inputs_per_s"] / r[1])[
                len(rounds) // 2
            ]
        finally:
            p.server.stop()
    load = os.getloadavg()
    print(f"batch runs, {args.replicas} dedicated replicas, folder in and folder out "
          f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")
    print(f"  {args.inputs:,} small JSON files, echo: batch run {small['inputs_per_s']:9,.0f}/s "
          f"({small['seconds']:.2f} s), in-process loop {small_loop:9,.0f}/s -> "
          f"{small['inputs_per_s'] / small_loop:.2f}x the loop (goal >= 0.5x)")
    print(f"  {args.cpu_inputs:,} inputs, {args.cpu_ms:g} ms CPU each: batch run "
          f"{cpu['inputs_per_s']:7,.0f}/s, one-process loop {cpu_loop:7,.0f}/s -> "
          f"{cpu['inputs_per_s'] / cpu_loop:.2f}x the loop (goal >= 1.7x; the median round of "
          f"{len(ratios)}: {', '.join(f'{r:.2f}' for r in ratios)})")
    for what, run in (("echo", small), ("spin", cpu)):
        print(f"  CPU per input during the {what} run: platform process "
              f"{run['platform_us']:6.1f} us, its replicas {run['replicas_us']:7.1f} us "
              "(utime+stime, /proc ticks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
