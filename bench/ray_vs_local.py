"""The Ray backend against the local backend, side by side in one run on this machine.

Figures: c=16 throughput through 2 replicas (wrk, POST to the platform's predict path) on Ray
divided by the same on the local backend (goal >= 0.9: the data path is the same frames, only
the socket differs: TCP instead of a Unix socket); cold start from zero (first answer of a new
serverless deployment) on Ray divided by local. Both platforms run as `modelplane up` processes
without the sandbox (Ray replicas are not sandboxed), with the echo example; Ray is a local
cluster (head with no CPU + one worker) that this script starts and stops.

    .venv/bin/python bench/ray_vs_local.py [--duration 5] [--rounds 3] [--cold 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
ECHO = ROOT / "examples" / "echo"
CLI = [sys.executable, "-m", "modelplane.cli.main"]
LUA = """wrk.method = "POST"
wrk.body = '{"inputs": [1, 2, 3], "name": "bench"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
done = function(summary, latency, requests)
  io.write(string.format("MPBENCH %%d %%d %%d\\n", summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Up:
    def __init__(self, label: str, tmp: Path, extra: list[str]) -> None:
        self.label = label
        self.data = tmp / label
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = (tmp / f"{label}.log").open("wb")
        self.proc = subprocess.Popen(
            [*CLI, "up", "--data-dir", str(self.data), "--port", str(self.port), "--no-sandbox",
             *extra],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{self.url}/api/v1/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    log_path = tmp / f"{label}.log"
                    raise RuntimeError(f"{label} did not start; see {log_path}") from None
                time.sleep(0.1)
        self.token = (self.data / "admin.token").read_text().strip()
        self.http = httpx.Client(base_url=self.url, timeout=120,
                                 headers={"authorization": f"Bearer {self.token}"})

    def deploy(self, name: str, **spec: Any) -> None:
        body = {"name": name, "model": {"path": str(ECHO)}, **spec}
        r = self.http.post("/api/v1/deployments", json=body)
        r.raise_for_status()

    def wait_ready(self, name: str, n: int) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.http.get(f"/api/v1/deployments/{name}").json()["status"]["ready"] >= n:
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.label}: {name} not ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def wrk(up: Up, tmp: Path, duration: float, connections: int) -> float:
    script = tmp / f"{up.label}.lua"
    script.write_text(LUA % up.token)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "-s", str(script),
         f"{up.url}/api/v1/deployments/echo/predict"],
        capture_output=True, text=True, timeout=duration + 60,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("MPBENCH "))
    requests, micros, errors = (int(x) for x in line.split()[1:])
    if errors:
        raise RuntimeError(f"{up.label}: {errors} failed requests")
    return requests / (micros / 1e6)


def cold(up: Up, i: int, rest: float) -> float:
    name = f"cold{i}"
    up.deploy(name, mode="serverless", scale={"min": 0, "max": 1},
              resources={"cpu": 0.5, "memory": "256Mi"})
    # At rest, as a deployment at zero would be: its warm templates are up (on Ray: one per node).
    time.sleep(rest)
    t0 = time.perf_counter()
    r = up.http.post(f"/api/v1/deployments/{name}/predict", json={"x": 1})
    seconds = time.perf_counter() - t0
    r.raise_for_status()
    up.http.delete(f"/api/v1/deployments/{name}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cold", type=int, default=3)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rest", type=float, default=5.0,
                    help="seconds between deploying at zero and the first request")
    args = ap.parse_args(argv)
    import ray
    from ray.cluster_utils import Cluster

    tmp = Path(tempfile.mkdtemp(prefix="mp-ray-bench-"))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0,
                                                            "include_dashboard": False})
    ups: list[Up] = []
    try:
        cluster.add_node(num_cpus=4)
        cluster.wait_for_nodes()
        local = Up("local", tmp, [])
        ups.append(local)
        onray = Up("ray", tmp, ["--backend", "ray", "--ray-address", cluster.address])
        ups.append(onray)
        for up in ups:
            up.deploy("echo", mode="dedicated", scale={"replicas": 2},
                      resources={"cpu": 0.5, "memory": "256Mi"})
        for up in ups:
            up.wait_ready("echo", 2)
            wrk(up, tmp, 1.0, args.connections)  # warm-up
        rps: dict[str, list[float]] = {"local": [], "ray": []}
        for _ in range(args.rounds):  # interleaved: the machine's noise hits both alike
            for up in ups:
                rps[up.label].append(wrk(up, tmp, args.duration, args.connections))
        colds: dict[str, list[float]] = {"local": [], "ray": []}
        for i in range(args.cold):
            for up in ups:
                colds[up.label].append(cold(up, i, args.rest))
        m = {k: statistics.median(v) for k, v in rps.items()}
        c = {k: statistics.median(v) for k, v in colds.items()}
        doc = {"rps": rps, "cold_seconds": colds, "rps_ratio_ray_over_local": m["ray"] / m["local"],
               "cold_ratio_ray_over_local": c["ray"] / c["local"],
               "loadavg_1m": os.getloadavg()[0]}
        print(f"c={args.connections} throughput, 2 replicas, median of {args.rounds} x "
              f"{args.duration:g} s (interleaved):")
        print(f"  local backend  {m['local']:8.0f} req/s")
        print(f"  Ray backend    {m['ray']:8.0f} req/s   ratio Ray/local {m['ray']/m['local']:.2f}"
              "  (goal >= 0.9)")
        print(f"cold start from zero, first answer, median of {args.cold}:")
        print(f"  local backend  {c['local'] * 1000:8.0f} ms")
        ratio = c["ray"] / c["local"]
        print(f"  Ray backend    {c['ray'] * 1000:8.0f} ms   ratio Ray/local {ratio:.1f}")
        print(f"(shared 2-core machine; load average {doc['loadavg_1m']:.1f})")
        print(json.dumps(doc))
        return 0
    finally:
        for up in ups:
            up.stop()
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    sys.exit(main())
