"""Replay: does the advisor's simulator predict what the real platform does?

Run from the repository root (about 8 minutes):

    .venv/bin/python bench/advisor_replay.py
    .venv/bin/python bench/advisor_replay.py --shapes spaced --seconds 60

One run, one machine, in order:

1. ``modelplane up`` (fresh temporary data dir, free 127.0.0.1 port, ``--stable-window 6`` so
   that a compressed trace sees the autoscaler's windows at the same scale);
2. for each traffic shape (steady: Poisson 4 req/s; bursty: bursts of 6, one burst every 8 s on
   average; spaced: one request every 10 s, idle_timeout 3 s) a serverless deployment (min 0,
   max 4, target_concurrency 1) is made and warmed up, the status poller (every 50 ms) starts,
   and right before the replay the advisor's probe measures bench/models/digits_replay — a real
   scikit-learn SVC trained on the 8x8 digits in ``load()``, classifying 100 images per request
   — through the platform, as a deployment of its own: five cold starts, then 40 warm
   predictions 0.25 s apart, each split into the gateway's service time and the platform hop
   (round trip minus service). A shared machine's load drifts from minute to minute, so each
   shape gets costs measured under the conditions it is replayed in;
3. a trace of ``--seconds`` seconds is replayed open-loop from zero, each request on a fresh
   connection;
4. the simulator runs the trace as it was sent (each request's send time, so the client's own
   lateness is in it) with the measured costs, the same settings and the node's cores from the
   platform's inventory (start-ups and services share them).

Compared per shape: p50 and p99 latency; the share of requests that met a cold start; replica-
seconds (replica processes alive, from the first request until the deployment is back at zero).
A request met a cold start when the platform's record of a start from zero (``status.
cold_starts``: when it began, how long to ready) has its ready moment between the request's
send and its answer: it was sent while the deployment was at zero and waited. The simulator's
figure is its ``cold_from_zero`` share (requests that arrived with no replica ready). Goals:
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
import os
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


@dataclasses.dataclass
class Sent:
    answer: rc.Answer
    offset: float  # when it was sent, seconds after the replay's start (perf_counter)
    wall: float  # the same instant, Unix time (to match the platform's records)


async def replay(
    port: int, path: str, headers: dict[str, str], trace: list[float], start: float
) -> list[Sent]:
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.2

    async def one(at: float) -> Sent:
        await asyncio.sleep(max(0.0, t0 + at - loop.time()))
        offset, wall = time.perf_counter() - start, time.time()
        return Sent(await rc.post(port, path, BODY, headers, timeout=90), offset, wall)

    return list(await asyncio.gather(*(one(t) for t in trace)))


def cold_from_records(sent: list[Sent], starts: list[dict[str, Any]]) -> float:
    """Share of requests whose wait spans a recorded start from zero's ready moment."""
    ready = [dt.datetime.fromisoformat(c["at"]).timestamp() + float(c["seconds"]) for c in starts]
    cold = sum(1 for s in sent if any(s.wall <= r <= s.wall + s.answer.seconds for r in ready))
    return cold / len(sent) if sent else 0.0


def measure(plat: Platform) -> Costs:
    with Client(url=plat.base, token=plat.token) as client:
        return probe(
            client,
            str(MODEL.resolve()),
            body={"rows": 100},
            cold=5,
            warm=40,
            gap=0.25,
            progress=log,
        )


def run_shape(plat: Platform, shape: str, seconds: float, cores: float) -> dict[str, Any]:
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
    # The model's costs, measured right before the replay (a shared machine's load drifts from
    # minute to minute), with the replay's status poller already running, as during the replay.
    poller = Poller(plat, name)
    poller.start()
    log(f"{shape}: probing the model")
    costs = measure(plat)
    trace = synthesize(cfg["pattern"], cfg["rph"], seconds, peak=cfg.get("peak", 8), seed=11)
    log(f"{shape}: replaying {len(trace)} requests over {seconds:.0f} s")
    began = dt.datetime.now(dt.UTC).isoformat()
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    sent = asyncio.run(replay(plat.port, path, plat.auth(), trace, start))
    last = time.perf_counter()
    answers = [s.answer for s in sent]
    zero = plat.wait_zero(name, 180)
    end = time.perf_counter()
    poller.halt()
    bad = [a for a in answers if a.status != 200]
    if bad:
        raise RuntimeError(f"{shape}: {len(bad)} failed, e.g. {bad[0].status} {bad[0].error}")
    latencies = [a.seconds for a in answers]
    view = plat.status(name)
    recorded = [c for c in view["cold_starts"] if c["at"] >= began]
    measured = {
        "p50_ms": rc.percentile(latencies, 50) * 1000,
        "p99_ms": rc.percentile(latencies, 99) * 1000,
        "cold_share": cold_from_records(sent, recorded),
        "replica_seconds": poller.replica_seconds(start, end),
        "back_to_zero_s": None if zero is None else end - last,
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "client_lateness_ms_p99": rc.percentile(
            [max(0.0, s.offset - 0.2 - t) for s, t in zip(sent, trace, strict=True)], 99
        )
        * 1000,
    }
    arrivals = [s.offset for s in sent]
    settings = Settings(
        stable_window=STABLE_WINDOW, autoscale_interval=0.2, seed=1, cpu_cores=cores
    )
    t0 = time.perf_counter()
    [sim] = simulate([SimDeployment(spec, arrivals, costs)], settings)
    sim_seconds = time.perf_counter() - t0
    simulated = {
        "p50_ms": sim.quantile(0.5) * 1000,
        "p99_ms": sim.quantile(0.99) * 1000,
        "cold_share": sim.cold_from_zero_share,
        "cold_share_exact": sim.cold_share,
        "replica_seconds": sim.replica_seconds,
        "simulation_seconds": sim_seconds,
    }
    # The same trace again, with the costs the platform recorded during this replay (what
    # `modelplane advise --deployment` reads: the gateway's service times of the answers, the
    # replicas' start-ups): on a busy machine a model's costs vary from minute to minute, and
    # this separates that from the simulator's own error.
    # (the gateway keeps the last 512 answers' service times: the replay's, and a warm-up)
    metrics = plat.http.get(f"/api/v1/deployments/{name}/metrics")
    metrics.raise_for_status()
    service = metrics.json()["service_seconds"][-len(trace) :]
    starts = [float(c["seconds"]) for c in recorded]
    replayed = dataclasses.replace(
        costs,
        service=ServiceTime.of(service),
        startup_samples=tuple(starts) or costs.startup_samples,
    )
    # (recorded under the replay's own contention: the cores are not shared a second time)
    plain = dataclasses.replace(settings, cpu_cores=None)
    [again] = simulate([SimDeployment(spec, arrivals, replayed)], plain)
    simulated_recorded = {
        "p50_ms": again.quantile(0.5) * 1000,
        "p99_ms": again.quantile(0.99) * 1000,
        "cold_share": again.cold_from_zero_share,
        "cold_share_exact": again.cold_share,
        "replica_seconds": again.replica_seconds,
        "recorded_starts": starts,
        "recorded_service_ms_p50": ServiceTime.of(service).quantile(0.5) * 1000,
        "recorded_service_ms_p99": ServiceTime.of(service).quantile(0.99) * 1000,
    }
    plat.delete(name)
    return {
        "shape": shape,
        "costs": costs.to_dict(),
        "requests": len(trace),
        "measured": measured,
        "simulated": simulated,
        "simulated_recorded_starts": simulated_recorded,
    }


def error(sim: float, real: float) -> float:
    if real == 0:
        return 0.0 if sim == 0 else math.inf
    return abs(sim - real) / real


def describe(c: dict[str, Any]) -> str:
    hop = (
        "not measured"
        if c["hop_seconds_p50"] is None
        else f"{c['hop_seconds_p50'] * 1000:.1f} ms / p99 {c['hop_seconds_p99'] * 1000:.1f} ms"
    )
    return (
        f"load {c['load_seconds'] * 1000:.0f} ms, cold-start overhead "
        f"{c['start_overhead_seconds'] * 1000:.0f} ms, service (gateway) p50 "
        f"{c['service_seconds_p50'] * 1000:.1f} ms / p99 {c['service_seconds_p99'] * 1000:.1f} "
        f"ms, platform hop p50 {hop}; starts (s): "
        + ", ".join(f"{x:.3f}" for x in c["cold_start_samples_seconds"])
    )


def table(rows: list[dict[str, Any]], cores: float) -> str:
    lines = [
        f"node cores (the platform inventory), shared by start-ups and services in sim: {cores:g}",
        "sim = simulated with the costs the probe measured just before that replay; sim2 = with "
        "the service times and start-ups the platform recorded during the replay (and the "
        "probe's hop; no core sharing, those figures already include it)",
        "",
        f"{'shape':<7} {'metric':<16} {'measured':>9} {'sim':>9} {'sim/real':>8} {'ok':>3}  "
        f"{'sim2':>9} {'sim2/real':>9} {'ok':>3}  goal",
    ]
    for row in rows:
        m, s, r = row["measured"], row["simulated"], row["simulated_recorded_starts"]
        lines.append(f"{row['shape']} probe: {describe(row['costs'])}")
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
            f"{'':<7} {row['requests']} requests, simulated in "
            f"{s['simulation_seconds'] * 1000:.0f} ms; load average "
            f"{m['load_average_1m'][0]:.1f} -> {m['load_average_1m'][1]:.1f}; client lateness "
            f"p99 {m['client_lateness_ms_p99']:.1f} ms; served by a starting replica (incl. "
            f"scale-ups) {s['cold_share_exact']:.3f} / {r['cold_share_exact']:.3f}; recorded "
            f"service p50 {r['recorded_service_ms_p50']:.1f} / p99 "
            f"{r['recorded_service_ms_p99']:.1f} ms; recorded starts from zero (s): "
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
            with Client(url=plat.base, token=plat.token) as client:
                cores = float(client.resources()["inventory"]["cores"])
            rows = [run_shape(plat, shape, args.seconds, cores) for shape in args.shapes]
        finally:
            plat.server.stop()
    report = table(rows, cores)
    print(report)
    print("\n(the machine is shared with other work: figures are from one run)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"cores": cores, "shapes": rows}, indent=2))
    log(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
