"""Per-model environments: build time cold, with a warm wheel cache and cached; the tools side by
side (uv and pip); and a replica's start in a per-model environment against the fast path.

Run from the repository root (network to the package index; ~2 min):

    .venv/bin/python bench/envs.py
    .venv/bin/python bench/envs.py --repeats 5 --requirement "httpx==0.23.0"

1. Build: for each tool, a fresh root and a fresh wheel cache (cold), then a fresh root with
   that cache (warm cache), then the same requirements again through a new EnvManager over the
   built root — what a second deployment with the same requirements costs (cached; goal ≤ 1 s).
2. Start: a real platform (temporary data dir), two dedicated deployments of examples/echo — one
   as it is (the platform's interpreter), one with a requirements.txt (its own environment).
   Each replica is killed ``--repeats`` times, the two deployments in turn; the reconciler
   replaces it at once from the warm template, and the platform's "ready in" time of each new
   replica is read back. Figure: the
   median per deployment and their difference (goal: within 10 ms).

The machine is shared: read the ratios and differences, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from modelplane.controlplane.platform import Platform  # noqa: E402
from modelplane.envs import EnvBuilder, EnvManager  # noqa: E402
from modelplane.envs.build import find_uv  # noqa: E402
from modelplane.settings import Settings  # noqa: E402


async def build_times(requirement: str, tool: str, tmp: Path) -> dict[str, float]:
    folder = tmp / f"model-{tool}"
    folder.mkdir()
    (folder / "requirements.txt").write_text(requirement + "\n")
    uv = find_uv() if tool == "uv" else None
    cache = tmp / f"cache-{tool}"
    out: dict[str, float] = {}
    for label, root in (("cold", tmp / f"{tool}-a"), ("warm cache", tmp / f"{tool}-b")):
        manager = EnvManager(EnvBuilder(root, uv=uv, cache=cache))
        started = time.perf_counter()
        python = await manager.python_for(folder)
        out[label] = time.perf_counter() - started
        assert python is not None
    manager = EnvManager(EnvBuilder(tmp / f"{tool}-b", uv=uv, cache=cache))  # a new deployment
    started = time.perf_counter()
    await manager.python_for(folder)
    out["cached"] = time.perf_counter() - started
    return out


async def start_times(repeats: int, tmp: Path) -> dict[str, list[float]]:
    plain = ROOT / "examples" / "echo"
    with_env = tmp / "echo-env"
    shutil.copytree(plain, with_env)
    (with_env / "requirements.txt").write_text("six==1.16.0\n")
    platform = Platform(Settings(data_dir=tmp / "data", port=0, reconcile_interval=0.05))
    await platform.start()
    headers = {"authorization": f"Bearer {platform.admin_token}"}
    results: dict[str, list[float]] = {"fast-path": [], "own-env": []}
    folders = {"fast-path": plain, "own-env": with_env}
    async with httpx.AsyncClient(base_url=platform.url, headers=headers, timeout=300) as http:
        try:
            pids: dict[str, int] = {}
            for name, folder in folders.items():
                body = {"name": name, "model": {"path": str(folder)}, "mode": "dedicated"}
                assert (await http.post("/api/v1/deployments", json=body)).status_code == 201
            for name in folders:
                pids[name] = await _ready_pid(http, name, None)
            # Interleaved: each round replaces one replica of each, so a burst of noise from the
            # rest of the machine hits both sides, not a whole series of one.
            for _ in range(repeats + 1):
                for name in folders:
                    os.kill(pids[name], signal.SIGKILL)
                    pids[name] = await _ready_pid(http, name, pids[name])
                    events = (await http.get(f"/api/v1/deployments/{name}")).json()["events"]
                    kinds = ("ready", "cold_start")  # a lone replica's replacement is a cold start
                    ready = [e for e in events if e["kind"] in kinds][-1]["message"]
                    results[name].append(float(re.search(r" in ([0-9.]+) s", ready).group(1)))  # type: ignore[union-attr]
            for name in folders:
                results[name] = results[name][1:]  # the first replacement warms the caches
                await http.delete(f"/api/v1/deployments/{name}")
        finally:
            await platform.stop()
    return results


async def _ready_pid(http: httpx.AsyncClient, name: str, old: int | None) -> int:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        st = (await http.get(f"/api/v1/deployments/{name}")).json()["status"]
        pids = [r["pid"] for r in st["replicas"] if r["state"] == "ready" and r["pid"] != old]
        if pids:
            return int(pids[0])
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{name}: no ready replica")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requirement", default="httpx==0.23.0")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-envs-") as t:
        tmp = Path(t)
        print(f"environment build of {a.requirement!r} (seconds)")
        print(f"{'tool':<6}{'cold':>10}{'warm cache':>12}{'cached':>10}")
        times = {}
        for tool in ("uv", "pip"):
            times[tool] = await build_times(a.requirement, tool, tmp)
            r = times[tool]
            print(f"{tool:<6}{r['cold']:>10.2f}{r['warm cache']:>12.2f}{r['cached']:>10.4f}")
        print(
            f"uv / pip: cold {times['uv']['cold'] / times['pip']['cold']:.2f}x, warm cache "
            f"{times['uv']['warm cache'] / times['pip']['warm cache']:.2f}x; "
            f"cached (second deployment) {times['uv']['cached'] * 1000:.1f} ms (goal <= 1 s)"
        )
        starts = await start_times(a.repeats, tmp)
        fast, own = (statistics.median(starts[k]) for k in ("fast-path", "own-env"))
        print(
            "replica start -> ready from the warm template (seconds, median of "
            f"{a.repeats}): fast path {fast:.4f}, own environment {own:.4f}, "
            f"difference {(own - fast) * 1000:+.1f} ms (goal within 10 ms)"
        )
        print("samples:", {k: [round(v, 4) for v in vals] for k, vals in starts.items()})


if __name__ == "__main__":
    asyncio.run(main())
