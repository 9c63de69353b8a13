"""Replay: does the advisor's simulator predict what the real platform does?

Run from the repository root (about 12 minutes):

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
   — through the platform, as a deployment of its own: five cold starts, three rounds of four
   replicas started together from zero (how much overlapping starts slow each other: the other
   work on the node, ``measure.other_load``), then 40 warm predictions 0.25 s apart, each split
   into the gateway's service time and the platform hop (round trip minus service). A shared
   machine's load drifts from minute to minute, so each shape gets costs measured under the
   conditions it is replayed in, and a second probe right after the replay;
3. a trace of ``--seconds`` seconds is replayed open-loop from zero, each request on a fresh
   connection;
4. the simulator runs the trace as it was sent (each request's send time, so the client's own
   lateness is in it) with the measured costs, the same settings and the node's cores from the
   platform's inventory (start-ups and services share them with the other work), once per seed
   of 20 (each figure is the median): with the probe before (``sim``), with both probes
   (``sim+-``), and with what the platform recorded during the replay (``sim2``).

Each request's latency is also split, measured with the model's own timestamps (when its
replica loaded, when its prediction ran) and simulated: the wait before its prediction began,
the service, the way out, and for a request that met a starting replica that replica's start-up
(asked for to loaded: spawn + load).

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
import statistics
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
from modelplane.advisor.measure import other_load, probe
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
        # replica id -> [asked for (Unix time), its load_seconds, first seen ready (Unix time)]
        self.replicas: dict[str, list[Any]] = {}
        self.stop_at: float | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            st = self.plat.status(self.name)
            self.samples.append((time.perf_counter(), len(st["replicas"])))
            for r in st["replicas"]:
                seen = self.replicas.setdefault(
                    r["id"], [dt.datetime.fromisoformat(r["started_at"]).timestamp(), None, None]
                )
                if r.get("load_seconds") is not None:
                    seen[1] = float(r["load_seconds"])
                if r.get("state") == "ready" and seen[2] is None:
                    seen[2] = time.time()
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


def _timing(body: bytes) -> dict[str, Any] | None:
    """The bench model's own timestamps in an answer (wherever the platform nests them)."""
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return None
    todo = [doc]
    while todo:
        x = todo.pop()
        if isinstance(x, dict):
            if isinstance(x.get("timing"), dict):
                return x["timing"]
            todo.extend(x.values())
        elif isinstance(x, list):
            todo.extend(x)
    return None


def asked_for(replicas: dict[str, list[Any]], load: tuple[float, float]) -> float:
    """When the replica that loaded over ``load`` was asked for: the one the status poller saw
    asked for before that load began whose reported load time is the closest (replicas run in
    a PID namespace of their own, so the model's pid does not name them)."""
    fits = [
        (abs(seen[1] - (load[1] - load[0])), seen[0])
        for seen in replicas.values()
        if seen[1] is not None and load[0] - 5.0 <= seen[0] <= load[0]
    ]
    return min(fits)[1] if fits else math.nan


def measured_parts(sent: list[Sent], replicas: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Each request's latency split with the model's timestamps: ``wait`` (sent to its
    prediction's start: the platform's way in, a wait for a replica to start or behind other
    requests), ``service`` (the prediction), ``after`` (the answer's way out); for a request
    that met a replica still loading, ``startup`` (asked for to loaded) = ``spawn`` (asked for
    to load() called: fork, imports, connecting) + ``load``."""
    out = []
    for s in sent:
        t = _timing(s.answer.body)
        if t is None:
            out.append({"latency": s.answer.seconds})
            continue
        b, e = t["predict"]
        l0, l1 = t["load"]
        a = asked_for(replicas, (l0, l1))
        out.append(
            {
                "latency": s.answer.seconds,
                "wait": b - s.wall,
                "service": e - b,
                "after": s.wall + s.answer.seconds - e,
                "cold": l1 > s.wall,
                "startup": l1 - a,
                "spawn": l0 - a,
                "load": l1 - l0,
                "pid": t["pid"],
                "sent": s.offset,
            }
        )
    return out


def simulated_parts(sim: Any) -> list[dict[str, Any]]:
    out = []
    for at, lat, began, hop, (asked, ready) in zip(
        sim.arrivals, sim.latencies, sim.began, sim.hops, sim.replica_span, strict=True
    ):
        wait = began - at
        out.append(
            {
                "latency": lat,
                "wait": wait,
                "service": lat - hop - wait,
                "after": hop,
                "cold": ready > at,
                "startup": ready - asked,
                "sent": at,
            }
        )
    return out


def parts_summary(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each part over all requests, over the slowest 5 %, and over the cold ones."""

    def mean(rows: list[dict[str, Any]], key: str) -> float:
        xs = [r[key] for r in rows if key in r and not math.isnan(r[key])]
        return sum(xs) / len(xs) * 1000 if xs else math.nan

    ok = [r for r in parts if "wait" in r]
    slow = sorted(ok, key=lambda r: r["latency"])[-max(1, len(ok) // 20) :]
    cold = [r for r in ok if r["cold"]]
    keys = ("latency", "wait", "service", "after", "startup", "spawn", "load")
    return {
        name: {"n": len(rows)} | {k: round(mean(rows, k), 1) for k in keys}
        for name, rows in (("all", ok), ("slowest_5pct", slow), ("cold", cold))
    }


def measure(plat: Platform) -> Costs:
    with Client(url=plat.base, token=plat.token) as client:
        return probe(
            client,
            str(MODEL.resolve()),
            body={"rows": 100},
            resources=spec_for("probe", 1.0).resources,
            cold=5,
            warm=40,
            gap=0.25,
            concurrent=4,
            bursts=3,
            progress=log,
        )


SEEDS = range(1, 21)


def pooled(before: Costs, after: Costs) -> Costs:
    """The samples of two probes together."""
    hop = None
    if before.hop is not None and after.hop is not None:
        hop = ServiceTime.of(before.hop.samples + after.hop.samples)
    return dataclasses.replace(
        before,
        load_seconds=statistics.median([before.load_seconds, after.load_seconds]),
        start_overhead=statistics.median([before.start_overhead, after.start_overhead]),
        service=ServiceTime.of(before.service.samples + after.service.samples),
        startup_samples=before.startup_samples + after.startup_samples,
        hop=hop,
        concurrent_startups=before.concurrent_startups + after.concurrent_startups,
    )


def simulate_median(
    spec: DeploymentSpec, arrivals: list[float], costs: Costs, settings: Settings
) -> tuple[dict[str, float], Any]:
    """The trace simulated once per seed (each draws other start-ups and service times from
    the measured ones); each figure is the median over the seeds, with the first seed's run
    for the per-request breakdown."""
    runs = [
        simulate([SimDeployment(spec, arrivals, costs)], dataclasses.replace(settings, seed=k))[0]
        for k in SEEDS
    ]
    figures = {
        "p50_ms": statistics.median(r.quantile(0.5) for r in runs) * 1000,
        "p99_ms": statistics.median(r.quantile(0.99) for r in runs) * 1000,
        "cold_share": statistics.median(r.cold_from_zero_share for r in runs),
        "cold_share_exact": statistics.median(r.cold_share for r in runs),
        "replica_seconds": statistics.median(r.replica_seconds for r in runs),
        "p99_ms_range": [
            min(r.quantile(0.99) for r in runs) * 1000,
            max(r.quantile(0.99) for r in runs) * 1000,
        ],
    }
    return figures, runs[0]


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
    others = other_load(costs, cores)
    settings = Settings(
        stable_window=STABLE_WINDOW,
        autoscale_interval=0.2,
        seed=1,
        cpu_cores=cores,
        other_load=others,
    )
    t0 = time.perf_counter()
    simulated, sim = simulate_median(spec, arrivals, costs, settings)
    simulated["simulation_seconds"] = (time.perf_counter() - t0) / len(SEEDS)
    simulated["other_load"] = others
    # the same with the node's cores shared as if nothing else ran on it (the former model)
    alone, _ = simulate_median(spec, arrivals, costs, dataclasses.replace(settings, other_load=0))
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
    simulated_recorded, _ = simulate_median(spec, arrivals, replayed, plain)
    simulated_recorded |= {
        "recorded_starts": starts,
        "recorded_service_ms_p50": ServiceTime.of(service).quantile(0.5) * 1000,
        "recorded_service_ms_p99": ServiceTime.of(service).quantile(0.99) * 1000,
    }
    plat.delete(name)
    # A second probe right after the replay: the machine's speed drifts from minute to minute,
    # and the probes before and after bracket the conditions the replay met (neither reads
    # anything the replay itself recorded).
    log(f"{shape}: probing the model again, after the replay")
    later = measure(plat)
    both = pooled(costs, later)
    bracketed, _ = simulate_median(
        spec, arrivals, both, dataclasses.replace(settings, other_load=other_load(both, cores))
    )
    m_parts, s_parts = measured_parts(sent, poller.replicas), simulated_parts(sim)
    return {
        "parts": {
            "measured": parts_summary(m_parts),
            "simulated": parts_summary(s_parts),
            "measured_requests": m_parts,
            "simulated_requests": s_parts,
        },
        "shape": shape,
        "costs": costs.to_dict(),
        "requests": len(trace),
        "measured": measured,
        "simulated": simulated,
        "simulated_no_other_load": alone,
        "simulated_bracketed": bracketed,
        "costs_after": later.to_dict(),
        "simulated_recorded_starts": simulated_recorded,
        "replicas_seen": poller.replicas,
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
        "sim = simulated with the costs the probe measured right before the replay; sim+- = with "
        "the samples of that probe and of a second one right after it; sim2 = with the service "
        "times and start-ups the platform recorded during the replay itself (and the probe's "
        "hop; no core sharing, those figures already include it). Each figure is the median "
        f"over {len(SEEDS)} seeds.",
        "",
        f"{'shape':<7} {'metric':<16} {'measured':>9} {'sim':>9} {'ratio':>6}    "
        f"{'sim+-':>9} {'ratio':>6}    {'sim2':>9} {'ratio':>6}    goal",
    ]
    for row in rows:
        m, s, r = row["measured"], row["simulated"], row["simulated_recorded_starts"]
        b = row["simulated_bracketed"]
        lines.append(f"{row['shape']} probe before: {describe(row['costs'])}")
        lines.append(f"{row['shape']} probe after:  {describe(row['costs_after'])}")
        for key in ("p50_ms", "p99_ms", "cold_share", "replica_seconds"):
            goal = GOALS.get(key)
            fmt = "{:>9.3f}" if key == "cold_share" else "{:>9.1f}"

            def cell(
                x: float, key: str = key, goal: float | None = goal, m: dict = m, fmt: str = fmt
            ) -> str:
                ratio = x / m[key] if m[key] else math.nan
                mark = "" if goal is None else ("✓" if error(x, m[key]) <= goal else "✗")
                return f"{fmt.format(x)} {ratio:>6.2f} {mark:<2}"

            lines.append(
                f"{row['shape']:<7} {key:<16} {fmt.format(m[key])} {cell(s[key])}  "
                f"{cell(b[key])}  {cell(r[key])}  {'' if goal is None else f'{goal:.0%}'}"
            )
        lines.append(
            f"{'':<7} other work on the node inferred from the probe's 4 starts together: "
            f"{s['other_load']:.1f} runnable (4 together: "
            + (
                ", ".join(f"{x:.3f}" for x in together) + " s"
                if (together := row["costs"]["concurrent_start_samples_seconds"])
                else "no round started two or more"
            )
            + f"); p99 over {len(SEEDS)} seeds {s['p99_ms_range'][0]:.0f}-"
            f"{s['p99_ms_range'][1]:.0f} ms; with no other work (cores/busy): p99 "
            f"{row['simulated_no_other_load']['p99_ms']:.0f} ms, replica-s "
            f"{row['simulated_no_other_load']['replica_seconds']:.1f}"
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
    lines += ["", breakdown(rows)]
    return "\n".join(lines)


def breakdown(rows: list[dict[str, Any]]) -> str:
    """Each shape's latency split (means in ms) over all requests, the slowest 5 % and those
    that met a starting replica, measured (the model's own timestamps) and simulated."""
    lines = [
        "latency split, mean ms: wait = sent to its prediction's start (a replica starting, "
        "other requests ahead, the way in); after = the way out (sim: the hop); startup = "
        "asked for to loaded (measured: spawn + load); simulated: the first seed's run",
        f"{'shape':<7} {'side':<9} {'requests':<13} {'n':>4} {'latency':>8} {'wait':>7} "
        f"{'service':>8} {'after':>6} {'startup':>8} {'spawn':>6} {'load':>6}",
    ]
    for row in rows:
        for side in ("measured", "simulated"):
            for group, v in row["parts"][side].items():

                def f(key: str, v: dict[str, Any] = v) -> str:
                    x = v.get(key, math.nan)
                    return "-" if x is None or math.isnan(x) else f"{x:.0f}"

                lines.append(
                    f"{row['shape']:<7} {side:<9} {group:<13} {v['n']:>4} {f('latency'):>8} "
                    f"{f('wait'):>7} {f('service'):>8} {f('after'):>6} {f('startup'):>8} "
                    f"{f('spawn'):>6} {f('load'):>6}"
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
