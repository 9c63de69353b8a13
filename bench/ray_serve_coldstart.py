"""Ray Serve's serverless figures, the baseline of bench/coldstart.py. Runs in Ray's own venv.

    bench/.venvs/ray/bin/python bench/ray_serve_coldstart.py --repeats 5 --idle-timeout 1

``bench/coldstart.py`` makes that venv (``pip install "ray[serve]"``) and runs this script; it
can also be run by hand. It starts a local Ray instance (``ray.init(num_cpus=2,
include_dashboard=False)``, usage stats off) with Serve's HTTP proxy on a free 127.0.0.1 port,
and for each model the platform benchmark uses deploys one Serve deployment with
``autoscaling_config`` min 0 / max 4 / target ongoing requests 1, upscale delay 0, and downscale
delays (to zero and otherwise) equal to the platform's ``idle_timeout``:

- echo, halfsecond: ``--repeats`` cold starts each: wait until Serve reports no replica at all,
  POST once (time to first answer), 3 more warm requests, then time from the last answer to zero
  replicas (polling ``serve.status()`` every 50 ms). The replica measures its own ``__init__``
  (the model's load) and returns it in a header, so overhead = first answer - load.
- memory at zero: VmRSS and PSS of every process of the Ray instance (the descendants of this
  driver, the driver itself reported apart), after the echo deployment went back to zero once.
- sleepy50 (predict blocks 50 ms): ``--burst`` concurrent requests at zero, latency p50/p99,
  time until 4 replicas run, then time back to zero.

Prints progress on stderr and one JSON document as the last line of stdout.
"""

from __future__ import annotations

import os

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no report leaves this machine

import argparse
import asyncio
import json
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rawclient as rc

BODY = b'{"inputs": [1, 2, 3], "name": "bench"}'
MODELS = {"echo": {"load": 0.0, "predict": 0.0},
          "halfsecond": {"load": 0.5, "predict": 0.0},
          "sleepy50": {"load": 0.0, "predict": 0.05}}


def log(msg: str) -> None:
    print(f"[ray {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((rc.HOST, 0))
        return int(s.getsockname()[1])


def make_app(name: str, idle: float, look_back: float, interval: float) -> Any:
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import Response

    load_s, predict_s = MODELS[name]["load"], MODELS[name]["predict"]

    @serve.deployment(
        name=name,
        ray_actor_options={"num_cpus": 0.5},
        autoscaling_config={
            "min_replicas": 0,
            "initial_replicas": 0,
            "max_replicas": 4,
            "target_ongoing_requests": 1,
            "upscale_delay_s": 0,
            "downscale_delay_s": idle,
            "downscale_to_zero_delay_s": idle,
            "look_back_period_s": look_back,
            "metrics_interval_s": interval,  # deprecated but honoured; see also the env vars
        },
    )
    class Model:
        def __init__(self) -> None:
            t0 = time.monotonic()
            if load_s:
                time.sleep(load_s)  # the model's own load, as in bench/models/halfsecond
            self.load_seconds = time.monotonic() - t0

        async def __call__(self, request: Request) -> Response:
            body = await request.body()
            json.loads(body)  # decode, as the platform's worker does
            if predict_s:
                time.sleep(predict_s)  # blocking, like bench/models/sleepy50 (inline sync predict)
            return Response(content=body, media_type="application/json",
                            headers={"x-load-seconds": f"{self.load_seconds:.6f}",
                                     "x-replica-pid": str(os.getpid())})

    return Model.bind()


def replica_states(app: str, dep: str) -> dict[str, int]:
    from ray import serve

    st = serve.status()
    a = st.applications.get(app)
    if a is None:
        return {}
    d = a.deployments.get(dep)
    if d is None:
        return {}
    return {str(k): int(v) for k, v in (d.replica_states or {}).items() if v}


def running(app: str, dep: str) -> int:
    return replica_states(app, dep).get("RUNNING", 0)


def wait_zero(app: str, dep: str, deadline_s: float, every: float = 0.05) -> float | None:
    """Seconds until Serve reports no replica in any state; None if the deadline passed."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < deadline_s:
        if not replica_states(app, dep):
            return time.perf_counter() - t0
        time.sleep(every)
    return None


def memory_at_zero(skip: set[int]) -> dict[str, Any]:
    me = os.getpid()
    procs = []
    for pid in rc.descendants(me):
        if pid in skip:
            continue
        cmd = rc.cmdline(pid)
        procs.append({"pid": pid, "rss": rc.rss_bytes(pid), "pss": rc.pss_bytes(pid),
                      "cmd": cmd[:160], "driver": pid == me})
    rest = [p for p in procs if not p["driver"]]
    return {
        "processes": procs,
        "count": len(rest),
        "rss_total": sum(p["rss"] or 0 for p in rest),
        "pss_total": sum(p["pss"] or 0 for p in rest),
        "driver_rss": rc.rss_bytes(me),
        "driver_pss": rc.pss_bytes(me),
    }


def cold_starts(name: str, port: int, repeats: int, idle: float, look_back: float,
                interval: float, zero_deadline: float) -> dict[str, Any]:
    from ray import serve

    app = f"app-{name}"
    t0 = time.perf_counter()
    serve.run(make_app(name, idle, look_back, interval), name=app, route_prefix=f"/{name}")
    log(f"{name}: deployed in {time.perf_counter() - t0:.2f} s")
    runs = []
    memory = None
    for i in range(repeats):
        if wait_zero(app, name, zero_deadline) is None:
            raise RuntimeError(f"{name}: not at zero within {zero_deadline:.0f} s: "
                               f"{replica_states(app, name)}")
        time.sleep(0.5)  # settle: the replica that just stopped is gone for good
        if i == 1 and memory is None and name == "echo":
            memory = memory_at_zero(set())
        first = asyncio.run(rc.post(port, f"/{name}", BODY))
        if first.status != 200 or first.body != BODY:
            raise RuntimeError(f"{name}: cold request answered {first.status} {first.error} "
                               f"{first.body[:200]!r}")
        warm = [asyncio.run(rc.post(port, f"/{name}", BODY)) for _ in range(3)]
        last_answer = time.perf_counter()
        if any(w.status != 200 for w in warm):
            raise RuntimeError(f"{name}: warm request failed: {[w.status for w in warm]}")
        load = float(first.headers.get("x-load-seconds", "nan"))
        to_zero = wait_zero(app, name, zero_deadline)
        if to_zero is not None:
            to_zero = time.perf_counter() - last_answer
        runs.append({"first_answer_s": first.seconds, "load_s": load,
                     "overhead_s": first.seconds - load,
                     "warm_s": [w.seconds for w in warm],
                     "to_zero_s": to_zero})
        log(f"{name} #{i + 1}: first answer {first.seconds * 1000:.0f} ms (load "
            f"{load * 1000:.0f} ms), warm {min(w.seconds for w in warm) * 1000:.1f} ms, "
            f"to zero {to_zero if to_zero is None else round(to_zero, 2)} s")
    serve.delete(app)
    return {"runs": runs, "memory_at_zero": memory}


async def _burst(n: int, port: int, app: str, dep: str, deadline: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    samples: list[tuple[float, int]] = []
    done = asyncio.Event()

    async def poll() -> None:
        while not done.is_set() and time.perf_counter() - t0 < deadline:
            c = await loop.run_in_executor(None, running, app, dep)
            samples.append((time.perf_counter() - t0, c))
            if c >= 4:
                return
            await asyncio.sleep(0.05)

    t0 = time.perf_counter()
    poller = asyncio.create_task(poll())
    answers = await rc.burst(n, port, f"/{dep}", BODY, timeout=deadline)
    wall = time.perf_counter() - t0
    done.set()
    await poller
    ok = [a for a in answers if a.status == 200 and a.body == BODY]
    per_pid: dict[str, int] = {}
    for a in ok:
        pid = a.headers.get("x-replica-pid", "?")
        per_pid[pid] = per_pid.get(pid, 0) + 1
    lat = [a.seconds for a in ok]
    four = next((t for t, c in samples if c >= 4), None)
    return {"n": n, "answered_ok": len(ok), "statuses": sorted({a.status for a in answers}),
            "errors": sorted({a.error for a in answers if a.error})[:3],
            "p50_s": rc.percentile(lat, 50), "p99_s": rc.percentile(lat, 99),
            "min_s": min(lat) if lat else None, "max_s": max(lat) if lat else None,
            "wall_s": wall, "served_per_replica": sorted(per_pid.values(), reverse=True),
            "time_to_4_ready_s": four, "max_running_seen": max((c for _, c in samples),
                                                               default=0),
            "ready_samples": samples[-40:]}


def burst(n: int, port: int, idle: float, look_back: float, interval: float,
          zero_deadline: float) -> dict[str, Any]:
    from ray import serve

    name, app = "sleepy50", "app-sleepy50"
    serve.run(make_app(name, idle, look_back, interval), name=app, route_prefix=f"/{name}")
    if wait_zero(app, name, zero_deadline) is None:
        raise RuntimeError("sleepy50: not at zero before the burst")
    time.sleep(0.5)
    res = asyncio.run(_burst(n, port, app, name, 60.0))
    last = time.perf_counter()
    z = wait_zero(app, name, zero_deadline)
    res["to_zero_s"] = None if z is None else time.perf_counter() - last
    log(f"burst of {n}: {res['answered_ok']} ok, p50 {res['p50_s'] * 1000:.0f} ms, "
        f"p99 {res['p99_s'] * 1000:.0f} ms, 4 running after {res['time_to_4_ready_s']} s, "
        f"to zero {res['to_zero_s']} s")
    serve.delete(app)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--idle-timeout", type=float, default=1.0,
                    help="downscale_delay_s and downscale_to_zero_delay_s [1]")
    ap.add_argument("--look-back", type=float, default=2.0,
                    help="autoscaling look_back_period_s (Ray wants it > the interval) [2]")
    ap.add_argument("--metrics-interval", type=float, default=0.5,
                    help="seconds between autoscaling metric pushes from handles and replicas "
                         "(metrics_interval_s and the RAY_SERVE_*_AUTOSCALING_METRIC_PUSH_"
                         "INTERVAL_S env vars; Ray's default is 10) [0.5]")
    ap.add_argument("--burst", type=int, default=64, help="concurrent requests; 0 skips [64]")
    ap.add_argument("--zero-deadline", type=float, default=90.0,
                    help="longest wait for zero replicas, seconds [90]")
    args = ap.parse_args()

    # set before ray.init so that the raylet, and through it the proxy and replicas, inherit them
    for var in ("RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S",
                "RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S"):
        os.environ[var] = str(args.metrics_interval)
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import ray
    from ray import serve

    out: dict[str, Any] = {"ray_version": ray.__version__, "python": sys.version.split()[0]}
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="mpray-")
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=tmp, log_to_driver=False,
             logging_level="ERROR")
    out["ray_init_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    serve.start(http_options={"host": rc.HOST, "port": port})
    out["serve_start_s"] = time.perf_counter() - t0
    out["temp_dir"] = tmp
    out["config"] = {"num_cpus": 2, "replica_num_cpus": 0.5, "min_replicas": 0,
                     "max_replicas": 4, "target_ongoing_requests": 1, "upscale_delay_s": 0,
                     "downscale_delay_s": args.idle_timeout,
                     "downscale_to_zero_delay_s": args.idle_timeout,
                     "look_back_period_s": args.look_back,
                     "metrics_interval_s": args.metrics_interval,
                     "env": {k: v for k, v in os.environ.items() if k.startswith("RAY_")}}
    log(f"ray {ray.__version__} up in {out['ray_init_s']:.1f} s, serve on port {port} "
        f"in {out['serve_start_s']:.1f} s")
    try:
        # memory before any deployment exists (controller + proxy already there)
        time.sleep(1.0)
        out["memory_no_deployment"] = memory_at_zero(set())
        out["models"] = {}
        for name in ("echo", "halfsecond"):
            out["models"][name] = cold_starts(name, port, args.repeats, args.idle_timeout,
                                              args.look_back, args.metrics_interval,
                                              args.zero_deadline)
        if args.burst > 0:
            out["burst"] = burst(args.burst, port, args.idle_timeout, args.look_back,
                                 args.metrics_interval, args.zero_deadline)
    finally:
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
