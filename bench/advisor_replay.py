"""Replay: does the advisor's simulator predict what the real platform does?

Run from the repository root (about 7 minutes):

    .venv/bin/python bench/advisor_replay.py
    .venv/bin/python bench/advisor_replay.py --shapes spaced --seconds 60

One run, one machine, in order:

1. ``modelplane up`` (fresh temporary data dir, free 127.0.0.1 port, ``--stable-window 6`` so
   that a compressed trace sees the autoscaler's windows at the same scale);
2. the advisor's probe measures bench/models/digits_replay — a real scikit-learn SVC trained on
   the 8x8 digits in ``load()``, classifying 100 images per request — through the platform: one
   cold start, ten warm predictions;
3. for each traffic shape (steady: Poisson 4 req/s; bursty: bursts of 6, one burst every 8 s on
   average; spaced: one request every 10 s, idle_timeout 3 s) a trace of ``--seconds`` seconds is
   replayed open-loop against a serverless deployment (min 0, max 4, target_concurrency 1) that
   starts at zero, each request on a fresh connection, while the status is polled every 50 ms;
4. the simulator runs the same trace with the measured costs and the same settings.

Compared per shape: p50 and p99 latency; the share of requests that met a cold start; replica-
seconds (replica processes alive, from the first request until the deployment is back at zero).
The client cannot see which replica served a request, so a request counts as having met a cold
start when its latency exceeds the warm p99 plus half the measured cold start; the same rule is
applied to the simulated latencies (the simulator's exact share is printed beside it). Goals:
replica-seconds and cold-start share within 15 %, p99 within 25 %.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import itertools
import json
import math
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rawclient as rc
from coldstart import Platform
from dataplane import BENCH

from modelplane.advisor import Costs, Pattern, ServiceTime, Settings, SimDeployment, simulate
from modelplane.advisor.measure import probe
from modelplane.advisor.traffic import synthesize
from modelplane.client import Client
from modelplane.spec import DeploymentSpec

MODEL = BENCH / "models" / "digits_replay"
RESULTS = BENCH / "results" / "advisor_replay.json"
BODY = json.dumps({"rows": 100}).encode()
STABLE_WINDOW = 6.0
SHAPES: dict[str, dict[str, Any]] = {
    "steady": {"pattern": Pattern.steady, "rph": 4 * 3600, "idle": 5.0},
    "bursty": {"pattern": Pattern.bursty, "rph": 6 * 3600 / 8, "peak": 6, "idle": 5.0},
    "spaced": {"pattern": Pattern.spaced, "rph": 360, "idle": 3.0},
}
GOALS = {"replica_seconds": 0.15, "cold_share": 0.15, "p99_ms": 0.25}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def spec_for(name: str, idle: float) -> DeploymentSpec:
    return DeploymentSpec.parse(
        {
            "name": name,
            "model": {"path": str(MODEL.resolve())},
            "mode": "serverless",
            "resources": {"cpu": 0.5, "memory": "512Mi"},
            "scale": {"min": 0, "max": 4, "target_concurrency": 1, "idle_timeout": idle},
        }
    )


class Poller(threading.Thread):
    """Counts the deployment's replica processes every 50 ms: ``(time, count)`` samples."""

    def __init__(self, plat: Platform, name: str) -> None:
        super().__init__(daemon=True)
        self.plat, self.name = plat, name
        self.samples: list[tuple[float, int]] = []
        self.stop_at: float | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            st = self.plat.status(self.name)
            self.samples.append((time.perf_counter(), len(st["replicas"])))
            time.sleep(0.05)

    def halt(self) -> None:
        self._halt.set()
        self.join(10)

    def replica_seconds(self, start: float, end: float) -> float:
        total = 0.0
        pts = [(t, n) for t, n in self.samples if start - 0.1 <= t <= end + 0.1]
        for (t0, n), (t1, _) in itertools.pairwise(pts):
            total += n * (min(t1, end) - max(t0, start)) if t1 > start and t0 < end else 0.0
        return total


async def replay(port: int, path: str, headers: dict[str, str], trace: list[float]) -> list[Any]:
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.2

    async def one(at: float) -> rc.Answer:
        await asyncio.sleep(max(0.0, t0 + at - loop.time()))
        return await rc.post(port, path, BODY, headers, timeout=90)

    return list(await asyncio.gather(*(one(t) for t in trace)))


def cold_by_latency(latencies: list[float], costs: Costs) -> float:
    fastest = min(costs.startup_samples or (costs.startup,))
    threshold = costs.service.quantile(0.99) + 0.5 * fastest
    return sum(1 for x in latencies if x > threshold) / len(latencies) if latencies else 0.0


def run_shape(plat: Platform, shape: str, seconds: float, costs: Costs) -> dict[str, Any]:
    cfg = SHAPES[shape]
    name = f"replay-{shape}"
    spec = spec_for(name, cfg["idle"])
    r = plat.http.post("/api/v1/deployments", json=spec.model_dump(mode="json"))
    if r.status_code != 201:
        raise RuntimeError(f"creating {name}: {r.status_code} {r.text[:300]}")
    # warm-up: the template imports the model's code once; then back to zero
    path = plat.predict_path(name)
    first = asyncio.run(rc.post(plat.port, path, BODY, plat.auth(), timeout=120))
    if first.status != 200:
        raise RuntimeError(f"{name}: warm-up answered {first.status} {first.body[:300]!r}")
    if plat.wait_zero(name, 120) is None:
        raise RuntimeError(f"{name}: not back at zero after the warm-up")
    time.sleep(0.5)
    trace = synthesize(cfg["pattern"], cfg["rph"], seconds, peak=cfg.get("peak", 8), seed=11)
    log(f"{shape}: replaying {len(trace)} requests over {seconds:.0f} s")
    poller = Poller(plat, name)
    poller.start()
    began = dt.datetime.now(dt.UTC).isoformat()
    start = time.perf_counter()
    answers = asyncio.run(replay(plat.port, path, plat.auth(), trace))
    last = time.perf_counter()
    zero = plat.wait_zero(name, 180)
    end = time.perf_counter()
    poller.halt()
    bad = [a for a in answers if a.status != 200]
    if bad:
        raise RuntimeError(f"{shape}: {len(bad)} failed, e.g. {bad[0].status} {bad[0].error}")
    latencies = [a.seconds for a in answers]
    measured = {
        "p50_ms": rc.percentile(latencies, 50) * 1000,
        "p99_ms": rc.percentile(latencies, 99) * 1000,
        "cold_share": cold_by_latency(latencies, costs),
        "replica_seconds": poller.replica_seconds(start, end),
        "back_to_zero_s": None if zero is None else end - last,
    }
    settings = Settings(stable_window=STABLE_WINDOW, autoscale_interval=0.2, seed=1)
    t0 = time.perf_counter()
    [sim] = simulate([SimDeployment(spec, [t + 0.2 for t in trace], costs)], settings)
    sim_seconds = time.perf_counter() - t0
    served = sim.latencies
    simulated = {
        "p50_ms": sim.quantile(0.5) * 1000,
        "p99_ms": sim.quantile(0.99) * 1000,
        "cold_share": cold_by_latency(served, costs),
        "cold_share_exact": sim.cold_share,
        "replica_seconds": sim.replica_seconds,
        "simulation_seconds": sim_seconds,
    }
    # The same trace again, with the costs the platform recorded during this replay (what
    # `modelplane advise --deployment` reads: the gateway's service times of the answers, the
    # replicas' start-ups): on a busy machine a model's costs vary from minute to minute, and
    # this separates that from the simulator's own error.
    recorded = [float(c["seconds"]) for c in plat.status(name)["cold_starts"] if c["at"] >= began]
    history = plat.http.post(
        "/api/v1/advise", json={"deployment": name, "trace": trace, "latency_slo_ms": 1000}
    )
    history.raise_for_status()
    service = history.json()["costs"]["service_samples_seconds"]
    replayed = dataclasses.replace(
        costs,
        service=ServiceTime.of(service),
        startup_samples=tuple(recorded) or costs.startup_samples,
    )
    [again] = simulate([SimDeployment(spec, [t + 0.2 for t in trace], replayed)], settings)
    simulated_recorded = {
        "p50_ms": again.quantile(0.5) * 1000,
        "p99_ms": again.quantile(0.99) * 1000,
        "cold_share": cold_by_latency(again.latencies, costs),
        "cold_share_exact": again.cold_share,
        "replica_seconds": again.replica_seconds,
        "recorded_starts": recorded,
    }
    plat.delete(name)
    return {
        "shape": shape,
        "requests": len(trace),
        "measured": measured,
        "simulated": simulated,
        "simulated_recorded_starts": simulated_recorded,
    }


def error(sim: float, real: float) -> float:
    if real == 0:
        return 0.0 if sim == 0 else math.inf
    return abs(sim - real) / real


def table(rows: list[dict[str, Any]], costs: Costs) -> str:
    lines = [
        f"measured costs (probe): load {costs.load_seconds * 1000:.0f} ms, cold-start overhead "
        f"{costs.start_overhead * 1000:.0f} ms, service p50 "
        f"{costs.service.quantile(0.5) * 1000:.1f} ms / p99 "
        f"{costs.service.quantile(0.99) * 1000:.1f} ms; starts (s): "
        + ", ".join(f"{x:.3f}" for x in costs.startup_samples),
        "sim = simulated with the probe's costs; sim2 = with the costs the platform recorded "
        "during that replay (its history: service times, start-ups)",
        "",
        f"{'shape':<7} {'metric':<16} {'measured':>9} {'sim':>9} {'sim/real':>8} {'ok':>3}  "
        f"{'sim2':>9} {'sim2/real':>9} {'ok':>3}  goal",
    ]
    for row in rows:
        m, s, r = row["measured"], row["simulated"], row["simulated_recorded_starts"]
        for key in ("p50_ms", "p99_ms", "cold_share", "replica_seconds"):
            goal = GOALS.get(key)
            fmt = "{:>9.3f}" if key == "cold_share" else "{:>9.1f}"

            def ok(x: float, key: str = key, goal: float | None = goal, m: dict = m) -> str:
                if goal is None:
                    return ""
                return "yes" if error(x, m[key]) <= goal else "NO"

            def ratio(x: float, key: str = key, m: dict = m) -> float:
                return x / m[key] if m[key] else math.nan

            lines.append(
                f"{row['shape']:<7} {key:<16} {fmt.format(m[key])} {fmt.format(s[key])} "
                f"{ratio(s[key]):>8.3f} {ok(s[key]):>3}  {fmt.format(r[key])} "
                f"{ratio(r[key]):>9.3f} {ok(r[key]):>3}  "
                f"{'' if goal is None else f'{goal:.0%}'}"
            )
        lines.append(
            f"{'':<7} exact cold-start share in the simulator {s['cold_share_exact']:.3f} / "
            f"{r['cold_share_exact']:.3f}; {row['requests']} requests, simulated in "
            f"{s['simulation_seconds'] * 1000:.0f} ms; recorded starts (s): "
            + ", ".join(f"{x:.2f}" for x in r["recorded_starts"])
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    ap.add_argument("--seconds", type=float, default=100.0, help="length of each trace")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="advisor-replay-") as tmp:
        plat = Platform(Path(tmp), STABLE_WINDOW)
        log("starting the platform")
        plat.start()
        try:
            log("probing the model")
            with Client(url=plat.base, token=plat.token) as client:
                costs = probe(
                    client, str(MODEL.resolve()), body={"rows": 100}, cold=5, progress=log
                )
            rows = [run_shape(plat, shape, args.seconds, costs) for shape in args.shapes]
        finally:
            plat.server.stop()
    report = table(rows, costs)
    print(report)
    print("\n(the machine is shared with other work: figures are from one run)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"costs": costs.to_dict(), "shapes": rows}, indent=2))
    log(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
