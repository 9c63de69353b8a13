"""Serverless benchmark: cold starts from zero, a burst at zero, time back to zero and memory at
zero, for the platform and for Ray Serve as the baseline, in one run.

Run from the repository root:

    .venv/bin/python bench/coldstart.py                 # 5 cold starts per case, ~3 min
    .venv/bin/python bench/coldstart.py --repeats 3 --skip-ray

The platform (``modelplane up``, fresh temporary data dir, free 127.0.0.1 port, and
``--stable-window`` if this tree's CLI has it) gets one serverless deployment at a time, created
over REST with ``scale: {min: 0, max: 4, target_concurrency: 1, idle_timeout: 1}``, each with
``warm_template: true`` (replicas forked from a template that imported the model's code) and
``false`` (a fresh interpreter per replica):

1. cold starts of examples/echo (load ~0) and bench/models/halfsecond (load() sleeps 0.5 s):
   per case one warm-up cycle, then ``--repeats`` cycles of: wait until no replica is left,
   POST once (time to first answer, client side, on a fresh connection), 3 warm requests, then
   poll the status every 50 ms until zero replicas. Overhead = first answer - the model's load
   time the replica reports (``status.cold_starts[].load_seconds``); also the platform's own
   start -> ready ``seconds`` minus that load.
2. a burst of ``--burst`` concurrent requests at zero to bench/models/sleepy50 (predict blocks
   50 ms): all answered? time until 4 replicas are ready (status polled every 25 ms), p50/p99.
3. time from the last answer to zero replicas, against idle_timeout.
4. resident memory at zero: the platform process, and the warm template (its child whose
   command line has ``modelplane.worker.template``).

Ray Serve runs the same models from bench/ray_serve_coldstart.py in its own venv,
bench/.venvs/ray (made on first use), after the platform is stopped. Results: a table on stdout
and bench/results/coldstart.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform as pyplatform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rawclient as rc
from dataplane import (
    BENCH,
    HOST,
    MIB,
    MODELPLANE,
    ROOT,
    Server,
    alive,
    children_of,
    free_port,
    pids_mentioning,
    terminate_as_exit,
    wait_until,
)

RESULTS = BENCH / "results" / "coldstart.json"
RAY_VENV = BENCH / ".venvs" / "ray"
RAY_SCRIPT = BENCH / "ray_serve_coldstart.py"
MODELS = {
    "echo": ROOT / "examples" / "echo",
    "halfsecond": BENCH / "models" / "halfsecond",
    "sleepy50": BENCH / "models" / "sleepy50",
}
BODY = b'{"inputs": [1, 2, 3], "name": "bench"}'
TEMPLATE_MARK = "modelplane.worker.template"
GOAL_MS = 25.0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- the platform ---------------------------------------------------------------------------------


class Platform:
    """``modelplane up`` on a free port with a fresh data dir, and its REST API."""

    def __init__(self, tmp: Path, stable_window: float | None) -> None:
        self.data_dir = tmp / "platform-data"
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        env = {k: v for k, v in os.environ.items()
               if k not in ("MODELPLANE_DATA_DIR", "MODELPLANE_URL", "MODELPLANE_TOKEN")}
        argv = [str(MODELPLANE), "up", "--data-dir", str(self.data_dir), "--port", str(self.port)]
        if stable_window is not None:
            argv += ["--stable-window", f"{stable_window:g}"]
        self.server = Server(
            "platform", "modelplane up", argv, self.base, tmp / "platform.log", env=env,
            stop_signal=signal.SIGTERM, stop_grace=20.0,
            # replicas and templates run in sessions of their own: find them by the data dir
            extra_pids=lambda: pids_mentioning(str(self.data_dir)),
        )
        self.token = ""
        self.http = httpx.Client(base_url=self.base, timeout=10)

    def start(self) -> None:
        self.server.start()
        token_file = self.data_dir / "admin.token"

        def api_up() -> bool:
            if not token_file.exists() or not token_file.read_text().strip():
                return False
            tok = token_file.read_text().strip()
            return self.http.get("/api/v1/deployments",
                                 headers={"Authorization": f"Bearer {tok}"}).status_code == 200

        wait_until("control plane answer", api_up, self.server, 60)
        self.token = token_file.read_text().strip()
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    @property
    def pid(self) -> int:
        return self.server.pid

    def create(self, name: str, folder: Path, warm_template: bool, idle: float) -> None:
        body = {"name": name, "model": {"path": str(folder.resolve())}, "mode": "serverless",
                "resources": {"cpu": 0.5, "memory": "512Mi"},
                "scale": {"min": 0, "max": 4, "target_concurrency": 1, "idle_timeout": idle,
                          "warm_template": warm_template}}
        r = self.http.post("/api/v1/deployments", json=body)
        if r.status_code not in (200, 201):
            raise RuntimeError(f"creating {name}: {r.status_code} {r.text[:500]}")

    def delete(self, name: str) -> None:
        self.http.delete(f"/api/v1/deployments/{name}")

    def status(self, name: str) -> dict[str, Any]:
        r = self.http.get(f"/api/v1/deployments/{name}")
        r.raise_for_status()
        return dict(r.json()["status"])

    def wait_zero(self, name: str, deadline_s: float, every: float = 0.05) -> float | None:
        """Seconds until no replica is left (ready, starting or exiting); None past deadline."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < deadline_s:
            if not self.server.running():
                raise RuntimeError(f"platform exited:\n{self.server.log_tail()}")
            st = self.status(name)
            if st["ready"] == 0 and st["starting"] == 0 and not st["replicas"]:
                return time.perf_counter() - t0
            time.sleep(every)
        return None

    def templates(self) -> list[int]:
        return [p for p in children_of(self.pid) if TEMPLATE_MARK in rc.cmdline(p)]

    def predict_path(self, name: str) -> str:
        return f"/api/v1/deployments/{name}/predict"

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def supports_stable_window() -> bool:
    p = subprocess.run([str(MODELPLANE), "up", "--help"], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "COLUMNS": "200"})
    return "--stable-window" in p.stdout


def memory(pid: int) -> dict[str, int | None]:
    return {"rss": rc.rss_bytes(pid), "pss": rc.pss_bytes(pid)}


def one_cycle(plat: Platform, name: str, zero_deadline: float) -> dict[str, Any]:
    """At zero: one request (cold), 3 warm ones, then time from the last answer to zero."""
    if plat.wait_zero(name, zero_deadline) is None:
        raise RuntimeError(f"{name}: not at zero within {zero_deadline:.0f} s")
    time.sleep(0.3)  # settle
    before = plat.status(name)["cold_starts"]
    last_seen = before[-1]["at"] if before else None
    path = plat.predict_path(name)
    first = asyncio.run(rc.post(plat.port, path, BODY, plat.auth()))
    if first.status != 200 or json.loads(first.body or b"null") != json.loads(BODY):
        raise RuntimeError(f"{name}: cold request answered {first.status} {first.error} "
                           f"{first.body[:300]!r}\n{plat.server.log_tail()}")
    warm = [asyncio.run(rc.post(plat.port, path, BODY, plat.auth())) for _ in range(3)]
    last_answer = time.perf_counter()
    if any(w.status != 200 for w in warm):
        raise RuntimeError(f"{name}: warm requests answered {[w.status for w in warm]}")
    z = plat.wait_zero(name, zero_deadline)
    to_zero = None if z is None else time.perf_counter() - last_answer
    after = plat.status(name)["cold_starts"]
    new = [c for c in after if last_seen is None or c["at"] > last_seen]
    cs = new[-1] if new else None
    load = (cs or {}).get("load_seconds")
    return {
        "first_answer_s": first.seconds,
        "warm_s": [w.seconds for w in warm],
        "platform_ready_s": (cs or {}).get("seconds"),
        "load_s": load,
        "overhead_s": first.seconds - load if load is not None else None,
        "platform_overhead_s": (cs["seconds"] - load) if cs and load is not None else None,
        "cold_start_recorded": cs is not None,
        "to_zero_s": to_zero,
    }


def cold_case(plat: Platform, model: str, warm_template: bool, repeats: int, idle: float,
              zero_deadline: float) -> dict[str, Any]:
    name = f"{model}-{'warm' if warm_template else 'fresh'}"
    plat.create(name, MODELS[model], warm_template, idle)
    try:
        warmup = one_cycle(plat, name, zero_deadline)
        log(f"{name}: warm-up cycle, first answer {warmup['first_answer_s'] * 1000:.1f} ms")
        mem = None
        if model == "echo":  # memory at zero, after one cycle: platform (+ template)
            time.sleep(0.5)
            mem = {"platform": memory(plat.pid),
                   "templates": [{"pid": p, **memory(p)} for p in plat.templates()],
                   "children": [{"pid": p, "cmd": rc.cmdline(p)[:160], **memory(p)}
                                for p in children_of(plat.pid)]}
        runs = []
        for i in range(repeats):
            r = one_cycle(plat, name, zero_deadline)
            runs.append(r)
            ov, tz = r["overhead_s"], r["to_zero_s"]
            ov_s = "?" if ov is None else f"{ov * 1000:.1f}"
            tz_s = "?" if tz is None else f"{tz:.2f}"
            log(f"{name} #{i + 1}: first answer {r['first_answer_s'] * 1000:.1f} ms, load "
                f"{(r['load_s'] or 0) * 1000:.1f} ms, overhead {ov_s} ms, warm "
                f"{min(r['warm_s']) * 1000:.1f} ms, to zero {tz_s} s")
        return {"name": name, "warmup": warmup, "runs": runs, "memory_at_zero": mem}
    finally:
        plat.delete(name)


async def _burst(plat: Platform, name: str, n: int) -> dict[str, Any]:
    samples: list[tuple[float, int, int]] = []
    done = asyncio.Event()
    t0 = time.perf_counter()

    async def poll() -> None:
        async with httpx.AsyncClient(base_url=plat.base, headers=plat.auth(), timeout=10) as c:
            while not done.is_set() and time.perf_counter() - t0 < 60:
                r = await c.get(f"/api/v1/deployments/{name}")
                st = r.json()["status"]
                samples.append((time.perf_counter() - t0, st["ready"], st["starting"]))
                if st["ready"] >= 4:
                    return
                await asyncio.sleep(0.025)

    poller = asyncio.create_task(poll())
    answers = await rc.burst(n, plat.port, plat.predict_path(name), BODY, plat.auth(),
                             timeout=60)
    wall = time.perf_counter() - t0
    done.set()
    await poller
    # which replica answered how many (before they go away): is the load spread?
    async with httpx.AsyncClient(base_url=plat.base, headers=plat.auth(), timeout=10) as c:
        st = (await c.get(f"/api/v1/deployments/{name}")).json()["status"]
    served = sorted((r.get("served") or 0 for r in st["replicas"]), reverse=True)
    want = json.loads(BODY)
    ok = [a for a in answers if a.status == 200 and json.loads(a.body or b"null") == want]
    lat = [a.seconds for a in ok]
    four = next((t for t, ready, _ in samples if ready >= 4), None)
    return {"n": n, "answered_ok": len(ok), "statuses": sorted({a.status for a in answers}),
            "errors": sorted({a.error for a in answers if a.error})[:3],
            "p50_s": rc.percentile(lat, 50), "p99_s": rc.percentile(lat, 99),
            "min_s": min(lat) if lat else None, "max_s": max(lat) if lat else None,
            "wall_s": wall, "served_per_replica": served,
            "time_to_4_ready_s": four, "max_ready_seen": max((s[1] for s in samples), default=0),
            "ready_samples": samples[-40:]}


def burst_case(plat: Platform, warm_template: bool, n: int, idle: float,
               zero_deadline: float) -> dict[str, Any]:
    name = f"sleepy50-{'warm' if warm_template else 'fresh'}"
    plat.create(name, MODELS["sleepy50"], warm_template, idle)
    try:
        one_cycle(plat, name, zero_deadline)  # warm-up: the template is ready
        if plat.wait_zero(name, zero_deadline) is None:
            raise RuntimeError(f"{name}: not at zero before the burst")
        time.sleep(0.3)
        res = asyncio.run(_burst(plat, name, n))
        last = time.perf_counter()
        z = plat.wait_zero(name, zero_deadline)
        res["to_zero_s"] = None if z is None else time.perf_counter() - last
        st = plat.status(name)
        res["restarts"] = st.get("restarts")
        log(f"{name} burst of {n}: {res['answered_ok']} ok, p50 {res['p50_s'] * 1000:.0f} ms, "
            f"p99 {res['p99_s'] * 1000:.0f} ms, 4 ready after "
            f"{res['time_to_4_ready_s']} s, to zero {res['to_zero_s']} s")
        return res
    finally:
        plat.delete(name)


# -- Ray Serve ------------------------------------------------------------------------------------


def ray_ready() -> tuple[Path | None, str]:
    """Ray's venv with ray[serve], made on first use. (python, note); python None: skip."""
    py = RAY_VENV / "bin" / "python"
    probe = "import ray, ray.serve, starlette; print(ray.__version__)"

    def ok() -> bool:
        return py.exists() and subprocess.run([str(py), "-c", probe], capture_output=True,
                                              timeout=120).returncode == 0

    if ok():
        return py, ""
    log(f"setting up Ray Serve in {RAY_VENV} (first use; a few minutes)…")
    steps = []
    if not py.exists():
        steps.append([shutil.which("python3") or sys.executable, "-m", "venv", str(RAY_VENV)])
    steps.append([str(py), "-m", "pip", "install", "-q", "ray[serve]"])
    for argv in steps:
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, f"skipped: {' '.join(argv[:4])}… failed: {e}"
        if p.returncode != 0:
            out = [ln for ln in (p.stdout + p.stderr).splitlines() if "is ignored" not in ln]
            return None, f"skipped: {' '.join(argv[:5])} exited {p.returncode}: " + \
                " | ".join(out[-6:])
    if not ok():
        return None, "skipped: installed, but `import ray.serve` still fails"
    return py, ""


def run_ray(py: Path, args: argparse.Namespace, tmp: Path) -> tuple[dict[str, Any] | None, str]:
    out_path, err_path = tmp / "ray.json", tmp / "ray.log"
    argv = [str(py), str(RAY_SCRIPT), "--repeats", str(args.repeats),
            "--idle-timeout", f"{args.idle_timeout:g}", "--burst", str(args.burst),
            "--metrics-interval", f"{args.ray_metrics_interval:g}",
            "--look-back", f"{args.ray_look_back:g}"]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                cwd=ROOT, env=env, start_new_session=True)
    note = ""
    try:
        proc.wait(timeout=args.ray_timeout)
    except subprocess.TimeoutExpired:
        note = f"Ray run stopped after {args.ray_timeout:.0f} s"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        # Ray's own daemons: anything still naming its temp dirs
        for pid in pids_mentioning("/tmp/mpray-"):
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    lines = out_path.read_text(errors="replace").strip().splitlines()
    try:
        doc = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        doc = None
    if doc is None:
        tail = [ln for ln in err_path.read_text(errors="replace").splitlines() if ln.strip()]
        return None, (note or f"Ray run failed (exit {proc.returncode})") + ":\n    " + \
            "\n    ".join(tail[-15:])
    tmpdir = doc.get("temp_dir")
    if tmpdir:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return doc, note


# -- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--repeats", type=int, default=5, help="cold starts per case [5]")
    ap.add_argument("--idle-timeout", type=float, default=1.0,
                    help="scale.idle_timeout, and Ray's downscale delays, seconds [1]")
    ap.add_argument("--stable-window", type=float, default=2.0,
                    help="modelplane up --stable-window, if the CLI has it, seconds [2]")
    ap.add_argument("--burst", type=int, default=64, help="concurrent requests at zero [64]")
    ap.add_argument("--zero-deadline", type=float, default=90.0,
                    help="longest wait for a deployment to reach zero, seconds [90]")
    ap.add_argument("--skip-ray", action="store_true", help="leave Ray Serve out")
    ap.add_argument("--ray-timeout", type=float, default=900.0,
                    help="bound on the whole Ray run, seconds [900]")
    ap.add_argument("--ray-metrics-interval", type=float, default=0.5,
                    help="Ray's autoscaling metric push interval, seconds (default 10 in Ray) "
                         "[0.5]")
    ap.add_argument("--ray-look-back", type=float, default=2.0,
                    help="Ray's look_back_period_s (> the interval) [2]")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results [{RESULTS}]")
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.burst < 0 or args.idle_timeout <= 0:
        ap.error("--repeats >= 1, --burst >= 0 and --idle-timeout > 0")

    started = time.time()
    load_before = os.getloadavg()
    ray_py, ray_note = (None, "skipped (--skip-ray)") if args.skip_ray else ray_ready()
    if ray_note:
        log(f"Ray Serve {ray_note}")
    has_sw = supports_stable_window()
    if not has_sw:
        log("this modelplane has no `up --stable-window`: the autoscaler keeps its default")

    tmp = Path(tempfile.mkdtemp(prefix="mp-cold-"))
    plat: Platform | None = None
    doc_mp: dict[str, Any] = {"cases": {}, "bursts": {}}
    finished = False
    try:
        with terminate_as_exit():
            plat = Platform(tmp, args.stable_window if has_sw else None)
            sw = f" --stable-window {args.stable_window:g}" if has_sw else ""
            log(f"starting the platform{sw}")
            plat.start()
            time.sleep(1.0)
            doc_mp["memory_no_deployment"] = {"platform": memory(plat.pid)}
            for model in ("echo", "halfsecond"):
                for warm in (True, False):
                    res = cold_case(plat, model, warm, args.repeats, args.idle_timeout,
                                    args.zero_deadline)
                    doc_mp["cases"][res["name"]] = res
            if args.burst:
                for warm in (True, False):
                    doc_mp["bursts"]["warm" if warm else "fresh"] = burst_case(
                        plat, warm, args.burst, args.idle_timeout,
                        args.zero_deadline + (args.stable_window if has_sw else 30))
            finished = True
    finally:
        if plat is not None:
            plat.server.stop()
            plat.http.close()
        if not finished:
            log(f"stopped early; platform log kept in {tmp}")

    doc_ray: dict[str, Any] | None = None
    if ray_py is not None:
        log("Ray Serve: running bench/ray_serve_coldstart.py in its venv (platform stopped)")
        doc_ray, note = run_ray(ray_py, args, tmp)
        if note:
            ray_note = note
            log(note)
    if finished:
        shutil.rmtree(tmp, ignore_errors=True)

    doc = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": pyplatform.python_version(),
                    "kernel": pyplatform.release(), "loadavg_before": load_before,
                    "loadavg_after": os.getloadavg()},
        "settings": {"repeats": args.repeats, "idle_timeout_s": args.idle_timeout,
                     "stable_window_s": args.stable_window if has_sw else None,
                     "burst": args.burst, "body": BODY.decode(),
                     "scale": {"min": 0, "max": 4, "target_concurrency": 1},
                     "resources": {"cpu": 0.5, "memory": "512Mi"}},
        "modelplane": doc_mp,
        "ray": doc_ray,
        "ray_note": ray_note,
        "derived": derive(doc_mp, doc_ray),
        "elapsed_s": time.time() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(render(doc))
    try:
        shown = args.out.resolve().relative_to(ROOT)
    except ValueError:
        shown = args.out
    print(f"\nJSON: {shown}")
    bursts_ok = all(b["answered_ok"] == b["n"] for b in doc_mp["bursts"].values())
    return 0 if bursts_ok else 1


# -- figures --------------------------------------------------------------------------------------


def _vals(runs: list[dict[str, Any]], key: str) -> list[float]:
    return [r[key] for r in runs if r.get(key) is not None]


def derive(mp: dict[str, Any], ray: dict[str, Any] | None) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for name, case in mp["cases"].items():
        runs = case["runs"]
        rows[f"modelplane {name}"] = {
            k: rc.summary(_vals(runs, k)) for k in
            ("first_answer_s", "load_s", "overhead_s", "platform_overhead_s", "to_zero_s")
        } | {"warm_s": rc.summary([min(r["warm_s"]) for r in runs])}
    if ray:
        for name, case in ray.get("models", {}).items():
            runs = case["runs"]
            rows[f"ray {name}"] = {
                k: rc.summary(_vals(runs, k)) for k in
                ("first_answer_s", "load_s", "overhead_s", "to_zero_s")
            } | {"warm_s": rc.summary([min(r["warm_s"]) for r in runs])}
    return {"cold_starts": rows}


def ms(x: float | None, width: int = 7) -> str:
    if x is None or x != x:
        return f"{'—':>{width}s}"
    return f"{x * 1000:{width}.1f}"


def spread(s: dict[str, float]) -> str:
    if not s.get("n"):
        return f"{'—':>24s}"
    return f"{ms(s['median'], 8)} [{ms(s['min'], 0)}…{ms(s['max'], 0)}]".rjust(24)


def mibs(b: int | None) -> str:
    return "—" if b is None else f"{b / MIB:.1f}"


def render(doc: dict[str, Any]) -> str:
    out: list[str] = []
    m, s = doc["machine"], doc["settings"]
    ray = doc["ray"]
    rows = doc["derived"]["cold_starts"]
    out.append(f"modelplane serverless — {m['cpus']} CPUs, loadavg "
               f"{m['loadavg_before'][0]:.2f}→{m['loadavg_after'][0]:.2f}; "
               f"scale min 0 / max 4 / target_concurrency 1, idle_timeout {s['idle_timeout_s']:g} s"
               f", stable window {s['stable_window_s'] if s['stable_window_s'] else 'default'}"
               f"{' s' if s['stable_window_s'] else ''}")
    if ray:
        c = ray["config"]
        out.append(f"Ray Serve {ray['ray_version']}: num_cpus 2, replica num_cpus 0.5, "
                   f"min 0 / max 4 / target_ongoing_requests 1, upscale_delay 0, downscale "
                   f"delays {c['downscale_delay_s']:g} s, look_back {c['look_back_period_s']:g} s,"
                   f" metric push {c['metrics_interval_s']:g} s")
    else:
        out.append(f"Ray Serve: {doc['ray_note']}")
    out.append("")

    out.append(f"1. Cold start from zero: {s['repeats']} per case after one warm-up; "
               "median [min…max], ms")
    out.append(f"  {'case':30s} {'first answer':>24s} {'model load':>10s} "
               f"{'overhead (client)':>24s} {'platform: ready-load':>24s} {'warm req':>8s}")
    for key, r in rows.items():
        label = key.replace("modelplane ", "").replace("-warm", ", warm template") \
                   .replace("-fresh", ", fresh interp.")
        label = ("Ray Serve " + label[4:]) if key.startswith("ray ") else label
        po = r.get("platform_overhead_s")
        dash = "—"
        out.append(f"  {label:30s} {spread(r['first_answer_s'])} "
                   f"{ms(r['load_s']['median'], 10)} {spread(r['overhead_s'])} "
                   f"{spread(po) if po else f'{dash:>24s}'} "
                   f"{ms(r['warm_s']['median'], 8)}")
    goal = []
    for key in ("modelplane echo-warm", "modelplane halfsecond-warm"):
        if key in rows and rows[key]["overhead_s"]["n"]:
            v = rows[key]["overhead_s"]["median"] * 1000
            goal.append(f"{key.split()[1]} {v:.1f} ms {'OK' if v <= GOAL_MS else 'OVER'}")
    out.append(f"  goal: overhead <= {GOAL_MS:g} ms (warm template): " + "; ".join(goal))
    out.append("  overhead = first answer (client, fresh TCP connection, request sent at zero) "
               "- the model's load() as the replica reports it;")
    out.append("  platform: ready-load = the platform's start->ready of that replica "
               "(status.cold_starts[].seconds) - load")
    if ray:
        rat = []
        for model in ("echo", "halfsecond"):
            rk, mk = f"ray {model}", f"modelplane {model}-warm"
            if rk in rows and mk in rows:
                a, b = rows[rk]["overhead_s"]["median"], rows[mk]["overhead_s"]["median"]
                fa, fb = rows[rk]["first_answer_s"]["median"], \
                    rows[mk]["first_answer_s"]["median"]
                rat.append(f"{model}: overhead {a / b:.0f}x, first answer {fa / fb:.1f}x")
        out.append("  Ray Serve ÷ modelplane (warm template), medians: " + "; ".join(rat))
    out.append("")

    bursts = doc["modelplane"]["bursts"]
    if bursts:
        out.append(f"2. Burst: {s['burst']} concurrent requests at zero, sleepy50 (predict blocks "
                   "50 ms), max 4 replicas, target 1")
        out.append(f"  {'':30s} {'answered':>9s} {'4 ready after':>13s} {'min':>8s} {'p50':>8s} "
                   f"{'p99':>8s} {'max':>8s} {'to zero':>8s}  answers per replica")
        items = [(f"modelplane, {k} " + ("template" if k == "warm" else "interp."), b)
                 for k, b in bursts.items()]
        if ray and ray.get("burst"):
            items.append(("Ray Serve", ray["burst"]))
        for label, b in items:
            four = b["time_to_4_ready_s"]
            four_s = f"{four * 1000:.0f} ms" if four is not None else \
                f"never ({b.get('max_ready_seen', b.get('max_running_seen'))})"
            tz = b.get("to_zero_s")
            tz_s = "—" if tz is None else f"{tz:.2f} s"
            per = b.get("served_per_replica")
            out.append(f"  {label:30s} {b['answered_ok']:>4d}/{b['n']:<4d} {four_s:>13s} "
                       f"{ms(b.get('min_s'), 5)} ms {ms(b['p50_s'], 5)} ms "
                       f"{ms(b['p99_s'], 5)} ms {ms(b['max_s'], 5)} ms {tz_s:>8s}  "
                       f"{'—' if per is None else per}")
        out.append("  4 ready after: from the first request sent to the first status poll "
                   "(every 25 ms; Ray 50 ms) showing 4 ready replicas")
        out.append("  answers per replica: modelplane status replicas[].served right after the "
                   "burst; Ray: by the replica pid each answer carried")
        out.append("")

    out.append(f"3. From the last answer to zero replicas (idle_timeout {s['idle_timeout_s']:g} s;"
               " status polled every 50 ms): median [min…max], s")
    for key, r in rows.items():
        t = r["to_zero_s"]
        if t["n"]:
            label = key.replace("ray ", "Ray Serve ")
            out.append(f"  {label:36s} {t['median']:6.2f} [{t['min']:.2f}…{t['max']:.2f}]"
                       f"  = idle_timeout + {t['median'] - s['idle_timeout_s']:.2f}")
    for k, b in bursts.items():
        if b.get("to_zero_s") is not None:
            out.append(f"  {'modelplane after the burst, ' + k:36s} {b['to_zero_s']:6.2f}"
                       "  (one run)")
    if ray and ray.get("burst", {}).get("to_zero_s") is not None:
        out.append(f"  {'Ray Serve after the burst':36s} {ray['burst']['to_zero_s']:6.2f}"
                   "  (one run)")
    out.append("")

    out.append("4. Resident memory at zero (MiB; PSS splits shared pages between processes)")
    out.append(f"  {'':52s} {'RSS':>8s} {'PSS':>8s}")
    mp = doc["modelplane"]
    nd = mp["memory_no_deployment"]["platform"]
    out.append(f"  {'modelplane up, no deployment':52s} {mibs(nd['rss']):>8s} "
               f"{mibs(nd['pss']):>8s}")
    mp_total = None
    for name in ("echo-warm", "echo-fresh"):
        mem = mp["cases"].get(name, {}).get("memory_at_zero")
        if not mem:
            continue
        p = mem["platform"]
        out.append(f"  {'modelplane up, ' + name + ' at zero':52s} {mibs(p['rss']):>8s} "
                   f"{mibs(p['pss']):>8s}")
        for t in mem["templates"]:
            out.append(f"  {'  + warm template (pid ' + str(t['pid']) + ')':52s} "
                       f"{mibs(t['rss']):>8s} {mibs(t['pss']):>8s}")
        others = [c for c in mem["children"] if c["pid"] not in {t["pid"] for t in
                                                                  mem["templates"]}]
        for c in others:
            out.append(f"  {'  + child ' + c['cmd'][:40]:52s} {mibs(c['rss']):>8s} "
                       f"{mibs(c['pss']):>8s}")
        tot_rss = sum((x["rss"] or 0) for x in [p, *mem["templates"], *others])
        tot_pss = sum((x["pss"] or 0) for x in [p, *mem["templates"], *others])
        out.append(f"  {'  = total, ' + name:52s} {mibs(tot_rss):>8s} {mibs(tot_pss):>8s}")
        if name == "echo-warm":
            mp_total = (tot_rss, tot_pss)
    if ray:
        for label, key in (("Ray + Serve, no deployment", "memory_no_deployment"),):
            r = ray[key]
            lab = f"{label} ({r['count']} processes)"
            out.append(f"  {lab:52s} "
                       f"{mibs(r['rss_total']):>8s} {mibs(r['pss_total']):>8s}")
        rm = ray["models"]["echo"]["memory_at_zero"]
        if rm:
            out.append(f"  {'Ray + Serve, echo at zero (' + str(rm['count']) + ' processes)':52s} "
                       f"{mibs(rm['rss_total']):>8s} {mibs(rm['pss_total']):>8s}")
            out.append(f"  {'  + the Ray driver (this script; not counted)':52s} "
                       f"{mibs(rm['driver_rss']):>8s} {mibs(rm['driver_pss']):>8s}")
            if mp_total:
                out.append(f"  Ray ÷ modelplane (echo, warm template) at zero: RSS "
                           f"{rm['rss_total'] / mp_total[0]:.1f}x, PSS "
                           f"{rm['pss_total'] / mp_total[1]:.1f}x")
            top = sorted((p for p in rm["processes"] if not p["driver"]),
                         key=lambda p: -(p["rss"] or 0))[:6]
            out.append("  largest Ray processes (RSS MiB): " + ", ".join(
                f"{_short(p['cmd'])} {mibs(p['rss'])}" for p in top))
    return "\n".join(out)


def _short(cmd: str) -> str:
    for key, name in (("gcs_server", "gcs_server"), ("raylet/raylet", "raylet"),
                      ("log_monitor", "log_monitor"), ("autoscaler/_private/monitor.py",
                                                       "autoscaler monitor"),
                      ("dashboard/dashboard.py", "dashboard head"), ("ray::", "")):
        if key in cmd:
            return name or cmd.split()[0]
    parts = cmd.split()
    return Path(parts[0]).name if parts else "?"


if __name__ == "__main__":
    sys.exit(main())
