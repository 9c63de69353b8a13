"""Data-plane benchmark: the platform's predict path side by side with baselines, in one run.

Run from the repository root:

    .venv/bin/python bench/dataplane.py                 # 3 rounds x 4 s per figure
    .venv/bin/python bench/dataplane.py --rounds 5 --duration 3 --skip-deepaas

Servers, all on 127.0.0.1, all serving the same echo model (predict returns its input):

  (a) starlette  bare Starlette on uvicorn, model in-process       bench/servers/starlette_echo.py
  (b) raw        raw asyncio protocol on httptools, in-process     bench/servers/raw_echo.py
  (c) run        ``modelplane run examples/echo``: our HTTP layer, model in-process
  (d) platform   ``modelplane up`` + a dedicated deployment of examples/echo with 2 replicas,
                 POST /api/v1/deployments/echo/predict with a bearer token
  (f) oscar      the same platform: OSCAR ``POST /run/oscar-echo``, a service over examples/echo
                 with 2 replicas (min_scale = max_scale = 2), the admin's bearer token; goal
                 ≥ 0.8x (d) native predict
  (g) base       with --base SRC: a second platform from another tree's src/ (PYTHONPATH), to
                 compare two commits in one run
  (e) deepaas    DEEPaaS 2.6.0 ``deepaas-run --model-name echo --workers 2`` serving
                 bench/deepaas_echo (its own venv, bench/.venvs/deepaas, made on first use)

Every figure is measured with wrk, interleaved: each round runs every server once (the order
rotates per round), and the figure is the median over rounds, so a burst of noise from the rest
of this 2-core machine hits one round of every server rather than all rounds of one. Ratios are
taken between figures of the same run. Results: a table on stdout and
bench/results/dataplane.json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform as pyplatform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rawclient import descendants

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results" / "dataplane.json"
ECHO_FOLDER = ROOT / "examples" / "echo"
VENV_BIN = Path(sys.executable).parent
MODELPLANE = VENV_BIN / "modelplane"
DEEPAAS_VENV = BENCH / ".venvs" / "deepaas"
DEEPAAS_MODEL = BENCH / "deepaas_echo"
DEEPAAS_VERSION = "2.6.0"

BODY = '{"inputs": [1, 2, 3], "name": "bench"}'
HOST = "127.0.0.1"
MIB = 1024 * 1024


# -- processes ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def rss_bytes(pid: int) -> int | None:
    """VmRSS of a process from /proc, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def children_of(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name is in parentheses and may contain spaces: split after the last ')'
        fields_ = stat.rpartition(")")[2].split()
        if len(fields_) > 1 and int(fields_[1]) == pid:
            kids.append(int(entry))
    return kids


def pids_mentioning(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (a unique temp path of this run)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            found.append(int(entry))
    return found


CLK_TCK = os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot, steal included (from /proc/stat).

    irq/softirq time is included: processes' own utime+stime already carry the loopback
    softirq work done on their behalf (measured here: leaving it out made the rest negative).
    """
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / CLK_TCK  # all but idle and iowait


def process_cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                st = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(st[11]) + int(st[12])  # utime, stime
    return total / CLK_TCK


class OtherLoad:
    """CPU the rest of the machine used during a measurement, in cores.

    Machine-wide busy time minus what this benchmark's processes used (its servers with all
    their descendants, itself, and the reaped wrk): the noise other people's work added.
    """

    def __init__(self, roots: list[int]) -> None:
        self.pids = descendants(os.getpid(), *roots)

    def __enter__(self) -> OtherLoad:
        self.t0 = time.monotonic()
        self.busy0 = machine_busy_s()
        self.ours0 = process_cpu_s(self.pids)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.kids0 = ru.ru_utime + ru.ru_stime
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self.t0
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours = (process_cpu_s(self.pids) - self.ours0) + (ru.ru_utime + ru.ru_stime - self.kids0)
        # can come out slightly negative (tick sampling): kept as measured in the JSON
        self.cores = (machine_busy_s() - self.busy0 - ours) / wall if wall else 0.0


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class Server:
    """A server subprocess in its own session (so its process group can be killed whole)."""

    key: str
    label: str
    argv: list[str]
    url: str
    log_path: Path
    headers: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] | None = None
    stop_signal: int = signal.SIGTERM
    stop_grace: float = 5.0
    proc: subprocess.Popen[bytes] | None = None
    extra_pids: Callable[[], list[int]] | None = None  # strays to kill on stop

    def start(self) -> None:
        with open(self.log_path, "wb") as log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, cwd=ROOT, start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 15) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + line for line in lines[-n:])

    def stop(self) -> None:
        if self.proc is None or not self.argv:  # not ours (an entry sharing another process)
            return
        find = self.extra_pids or (lambda: [])
        strays = find()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=self.stop_grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for pid in set(strays) | set(find()):
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def wait_until(what: str, check: Callable[[], bool], server: Server, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not server.running():
            raise RuntimeError(f"{server.label} exited before {what}:\n{server.log_tail()}")
        try:
            if check():
                return
        except (httpx.HTTPError, OSError, ValueError) as e:
            last = e
        time.sleep(0.1)
    raise RuntimeError(
        f"{server.label}: no {what} within {deadline_s:.0f} s (last error: {last!r}):\n"
        f"{server.log_tail()}"
    )


def check_echo(server: Server) -> bool:
    """One real predict: 200 and the input comes back (DEEPaaS wraps it in ``predictions``)."""
    r = httpx.post(server.url, content=BODY, timeout=5,
                   headers={"content-type": "application/json", **server.headers})
    if r.status_code != 200:
        return False
    got = r.json()
    if server.key == "deepaas":
        got = got.get("predictions")
    return bool(got == json.loads(BODY))


# -- the servers ----------------------------------------------------------------------------------


def start_plain(key: str, label: str, argv: list[str], url: str, tmp: Path) -> Server:
    s = Server(key, label, argv, url, tmp / f"{key}.log")
    s.start()
    wait_until("echo answer", lambda: check_echo(s), s, 60)
    return s


def start_platform(tmp: Path, replicas: int) -> tuple[Server, dict[str, Any]]:
    data_dir = tmp / "platform-data"
    port = free_port()
    base = f"http://{HOST}:{port}"
    env = {k: v for k, v in os.environ.items()
           if k not in ("MODELPLANE_DATA_DIR", "MODELPLANE_URL", "MODELPLANE_TOKEN")}
    s = Server(
        "platform", f"platform, dedicated, {replicas} replicas",
        [str(MODELPLANE), "up", "--data-dir", str(data_dir), "--port", str(port)],
        f"{base}/api/v1/deployments/echo/predict", tmp / "platform.log", env=env,
        stop_signal=signal.SIGTERM, stop_grace=20.0,
        # replicas run in sessions of their own: find them by this run's unique data dir
        extra_pids=lambda: pids_mentioning(str(data_dir)),
    )
    s.start()
    token_file = data_dir / "admin.token"

    def api_up() -> bool:
        if not token_file.exists() or not token_file.read_text().strip():
            return False
        tok = token_file.read_text().strip()
        return httpx.get(f"{base}/api/v1/deployments", timeout=2,
                         headers={"Authorization": f"Bearer {tok}"}).status_code == 200

    wait_until("control plane answer", api_up, s, 60)
    token = token_file.read_text().strip()
    s.headers = {"Authorization": f"Bearer {token}"}
    deploy = subprocess.run(
        [str(MODELPLANE), "deploy", str(ECHO_FOLDER), "--name", "echo", "--mode", "dedicated",
         "--replicas", str(replicas), "--url", base, "--token", token, "--timeout", "120"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    if deploy.returncode != 0:
        raise RuntimeError(f"modelplane deploy failed ({deploy.returncode}):\n"
                           f"{deploy.stdout}{deploy.stderr}\n{s.log_tail()}")
    wait_until("echo answer", lambda: check_echo(s), s, 60)
    info = {"base": base, "token": token, "data_dir": str(data_dir),
            "deploy_output": deploy.stdout.strip()}
    return s, info


def start_oscar_service(plat: Server, info: dict[str, Any], replicas: int) -> Server:
    """An OSCAR service over the echo model on the running platform; ``/run`` is its figure.
    The server entry shares the platform's process (stopping it is the platform's stop)."""
    base = info["base"]
    service = {"name": "oscar-echo", "image": "none", "model": {"path": str(ECHO_FOLDER)},
               "synchronous": {"min_scale": replicas, "max_scale": replicas}}
    r = httpx.post(f"{base}/system/services", json=service, headers=plat.headers, timeout=60)
    if r.status_code != 201:
        raise RuntimeError(f"creating the OSCAR service failed: {r.status_code} {r.text}")
    s = Server("oscar", f"OSCAR /run on the platform, {replicas} replicas", [],
               f"{base}/run/oscar-echo", plat.log_path, headers=dict(plat.headers))
    s.proc = plat.proc
    wait_until("OSCAR /run answer", lambda: check_echo(s), s, 60)
    return s


def platform_status(s: Server, base: str) -> dict[str, Any]:
    r = httpx.get(f"{base}/api/v1/deployments/echo", headers=s.headers, timeout=5)
    r.raise_for_status()
    return dict(r.json())


def deepaas_ready(log: Callable[[str], None]) -> Path | None:
    """The DEEPaaS venv with deepaas==2.6.0 and the echo model; made on first use. None: skip."""
    py = DEEPAAS_VENV / "bin" / "python"
    run = DEEPAAS_VENV / "bin" / "deepaas-run"
    probe = (
        "import importlib.metadata as m, sys\n"
        f"assert m.version('deepaas') == {DEEPAAS_VERSION!r}, m.version('deepaas')\n"
        "assert any(e.name == 'echo' for e in m.entry_points(group='deepaas.v2.model'))\n"
    )

    def ok() -> bool:
        return py.exists() and run.exists() and subprocess.run(
            [str(py), "-c", probe], capture_output=True).returncode == 0

    if ok():
        return run
    log(f"setting up DEEPaaS {DEEPAAS_VERSION} in {DEEPAAS_VENV} "
        "(first use; this can take a minute)…")
    steps = []
    if not py.exists():
        base_python = shutil.which("python3") or sys.executable
        steps.append([base_python, "-m", "venv", str(DEEPAAS_VENV)])
    steps += [
        [str(py), "-m", "pip", "install", "-q", f"deepaas=={DEEPAAS_VERSION}"],
        [str(py), "-m", "pip", "install", "-q", "-e", str(DEEPAAS_MODEL)],
    ]
    for argv in steps:
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as e:
            log(f"DEEPaaS skipped: {' '.join(argv[:4])}… failed: {e}")
            return None
        if p.returncode != 0:
            out = [ln for ln in (p.stdout + p.stderr).splitlines() if "is ignored" not in ln]
            log(f"DEEPaaS skipped: {' '.join(argv[:5])} exited {p.returncode}:\n    "
                + "\n    ".join(out[-12:]))
            return None
    if not ok():
        log("DEEPaaS skipped: installed, but deepaas/echo entry point still not importable")
        return None
    return run


def start_deepaas(run: Path, tmp: Path, workers: int) -> Server:
    port = free_port()
    s = Server(
        "deepaas", f"DEEPaaS {DEEPAAS_VERSION} (--workers {workers})",
        [str(run), "--model-name", "echo", "--listen-ip", HOST, "--listen-port", str(port),
         "--workers", str(workers)],
        f"http://{HOST}:{port}/v2/models/echo/predict/", tmp / "deepaas.log",
        # its multiprocessing pools ignore SIGTERM; SIGINT stops aiohttp, SIGKILL the rest
        stop_signal=signal.SIGINT, stop_grace=5.0,
    )
    s.start()
    wait_until("echo answer", lambda: check_echo(s), s, 90)
    return s


# -- wrk ------------------------------------------------------------------------------------------

LUA = """\
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{auth}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "MPBENCH {{\\"requests\\": %d, \\"duration_us\\": %d, \\"connect\\": %d, \\"read\\": %d, " ..
    "\\"write\\": %d, \\"status\\": %d, \\"timeout\\": %d, \\"p50_us\\": %.1f, " ..
    "\\"p90_us\\": %.1f, \\"p99_us\\": %.1f, \\"mean_us\\": %.1f, \\"max_us\\": %.1f}}\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean,
    latency.max))
end
"""


def lua_script(server: Server, tmp: Path) -> Path:
    auth = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in server.headers.items())
    path = tmp / f"{server.key}.lua"
    path.write_text(LUA.format(body=json.dumps(BODY), auth=auth))
    return path


def wrk(server: Server, script: Path, connections: int, duration: float,
        latency: bool = False, roots: list[int] | None = None) -> dict[str, Any]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--timeout", "10s",
            "-s", str(script)]
    if latency:
        argv.append("--latency")
    argv.append(server.url)
    with OtherLoad(roots or []) as other:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("MPBENCH ")), None)
    if p.returncode != 0 or line is None:
        raise RuntimeError(f"wrk against {server.label} failed ({p.returncode}):\n"
                           f"{p.stdout}{p.stderr}")
    r: dict[str, Any] = json.loads(line.removeprefix("MPBENCH "))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    r["loadavg_1m_after"] = os.getloadavg()[0]
    r["other_load_cores"] = other.cores
    return r


# -- reporting helpers ----------------------------------------------------------------------------


def med(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def mib(b: int | None) -> str:
    return "gone" if b is None else f"{b / MIB:6.1f} MiB"


def fmt_us(x: float) -> str:
    return f"{x:8.0f} µs" if x < 10_000 else f"{x / 1000:7.1f} ms"


def fmt_delta_us(x: float) -> str:
    return f"{x:+8.0f} µs" if abs(x) < 10_000 else f"{x / 1000:+7.1f} ms"


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """SIGTERM/SIGHUP raise SystemExit so the ``finally`` that stops the servers runs."""
    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


# -- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run [4]")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; median [3]")
    ap.add_argument("--connections", type=int, default=16, help="concurrency of the rps run [16]")
    ap.add_argument("--replicas", type=int, default=2, help="platform replicas [2]")
    ap.add_argument("--skip-deepaas", action="store_true", help="leave DEEPaaS out")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results [{RESULTS}]")
    ap.add_argument("--base", type=Path, default=None,
                    help="a src/ folder of another tree (e.g. a `git worktree` of an older "
                         "commit): its platform, (g), runs in the same rounds (PYTHONPATH)")
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk not found on PATH (apt-get install wrk)", file=sys.stderr)
        return 2
    if args.duration <= 0 or args.rounds < 1:
        ap.error("--duration must be > 0 and --rounds >= 1")

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    started = time.time()
    load_before = os.getloadavg()
    deepaas_run = None if args.skip_deepaas else deepaas_ready(log)
    deepaas_note = ("skipped (--skip-deepaas)" if args.skip_deepaas
                    else None if deepaas_run else "skipped (setup failed, see above)")

    tmp = Path(tempfile.mkdtemp(prefix="mp-bench-"))
    servers: list[Server] = []
    memory: dict[str, Any] = {}
    results: dict[str, Any] = {}
    finished = False
    try:
        with terminate_as_exit():
            py = sys.executable
            for key, label, script in (("starlette", "Starlette baseline", "starlette_echo.py"),
                                       ("raw", "raw httptools in-process", "raw_echo.py")):
                port = free_port()
                log(f"starting {label}")
                servers.append(start_plain(key, label, [py, str(BENCH / "servers" / script),
                                                        str(port)],
                                           f"http://{HOST}:{port}/predict", tmp))
            port = free_port()
            log("starting modelplane run examples/echo")
            servers.append(start_plain(
                "run", "modelplane run (in-process)",
                [str(MODELPLANE), "run", str(ECHO_FOLDER), "--port", str(port)],
                f"http://{HOST}:{port}/predict", tmp))
            log(f"starting the platform and deploying echo with {args.replicas} replicas")
            plat, plat_info = start_platform(tmp, args.replicas)
            servers.append(plat)
            log(f"creating an OSCAR service over echo with {args.replicas} replicas")
            servers.append(start_oscar_service(plat, plat_info, args.replicas))
            if deepaas_run is not None:
                log("starting DEEPaaS")
                try:
                    servers.append(start_deepaas(deepaas_run, tmp, args.replicas))
                except RuntimeError as e:
                    deepaas_note = f"skipped (did not start: {str(e).splitlines()[0]})"
                    log(f"DEEPaaS {deepaas_note}\n{e}")
            if args.base is not None:
                log(f"starting a second platform from {args.base} (PYTHONPATH), echo x"
                    f"{args.replicas}")
                saved = os.environ.get("PYTHONPATH")
                os.environ["PYTHONPATH"] = str(args.base.resolve())
                try:
                    (tmp / "base").mkdir()
                    other, _ = start_platform(tmp / "base", args.replicas)
                finally:
                    if saved is None:
                        os.environ.pop("PYTHONPATH", None)
                    else:
                        os.environ["PYTHONPATH"] = saved
                other.key, other.label = "base", f"platform of --base, {args.replicas} replicas"
                servers.append(other)
            by_key = {s.key: s for s in servers}

            # memory of the platform while idle, before any load
            time.sleep(1.0)
            st = platform_status(plat, plat_info["base"])
            memory["before_load"] = {
                "platform_rss": rss_bytes(plat.pid),
                "replicas": [{"id": r["id"], "pid": r["pid"], "rss": rss_bytes(r["pid"]),
                              "reported_memory_bytes": r.get("memory_bytes")}
                             for r in st["status"]["replicas"]],
            }

            scripts = {s.key: lua_script(s, tmp) for s in servers}
            log("warm-up: 1 s at each server")
            for s in servers:
                wrk(s, scripts[s.key], args.connections, 1.0)

            roots = [s.pid for s in servers]
            runs: dict[str, dict[str, list[dict[str, Any]]]] = {
                s.key: {"c16": [], "c1": []} for s in servers}
            for rnd in range(args.rounds):
                order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
                for s in order:
                    r = wrk(s, scripts[s.key], args.connections, args.duration, roots=roots)
                    runs[s.key]["c16"].append(r)
                    log(f"round {rnd + 1}/{args.rounds} c{args.connections} {s.key:9s} "
                        f"{r['rps']:9.0f} req/s  errors {r['errors']}  "
                        f"other load {r['other_load_cores']:.2f} cores")
                for s in order:
                    r = wrk(s, scripts[s.key], 1, args.duration, latency=True, roots=roots)
                    runs[s.key]["c1"].append(r)
                    log(f"round {rnd + 1}/{args.rounds} c1  {s.key:9s} p50 {r['p50_us']:7.0f} µs"
                        f"  p99 {r['p99_us']:7.0f} µs  errors {r['errors']}  "
                        f"other load {r['other_load_cores']:.2f} cores")

            # memory after the load, once idle again
            time.sleep(2.0)
            st = platform_status(plat, plat_info["base"])
            memory["after_load"] = {
                "platform_rss": rss_bytes(plat.pid),
                "replicas": [{"id": r["id"], "pid": r["pid"], "rss": rss_bytes(r["pid"]),
                              "reported_memory_bytes": r.get("memory_bytes"),
                              "served": r.get("served")}
                             for r in st["status"]["replicas"]],
                "restarts": st["status"].get("restarts"),
            }
            memory["other_servers_after_load"] = {
                s.key: {"rss": rss_bytes(s.pid),
                        "children_rss": [rss_bytes(c) for c in children_of(s.pid)]}
                for s in servers if s.key not in ("platform", "oscar", "base")
            }

            for key, rr in runs.items():
                c16, c1 = rr["c16"], rr["c1"]
                results[key] = {
                    "label": by_key[key].label,
                    "url_path": httpx.URL(by_key[key].url).path,
                    "rps_median": med([r["rps"] for r in c16]),
                    "rps_rounds": [r["rps"] for r in c16],
                    "p50_us_median": med([r["p50_us"] for r in c1]),
                    "p99_us_median": med([r["p99_us"] for r in c1]),
                    "p50_us_rounds": [r["p50_us"] for r in c1],
                    "p99_us_rounds": [r["p99_us"] for r in c1],
                    "rps_c1_median": med([r["rps"] for r in c1]),
                    "errors": sum(r["errors"] for r in c16 + c1),
                    "runs": rr,
                }
            finished = True
    finally:
        for s in reversed(servers):
            s.stop()
        if finished:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"stopped early; server logs kept in {tmp}")
    load_after = os.getloadavg()

    # -- derived figures ------------------------------------------------------------------------
    P = results["platform"]
    ratios: dict[str, Any] = {}
    for base in ("starlette", "raw", "run", "deepaas", "oscar", "base"):
        if base in results:
            per_round = [p / b for p, b in zip(P["rps_rounds"], results[base]["rps_rounds"],
                                               strict=True)]
            ratios[base] = {"of_medians": P["rps_median"] / results[base]["rps_median"],
                            "per_round": per_round}
    added = {
        base: {
            "p50_us": P["p50_us_median"] - results[base]["p50_us_median"],
            "p99_us": P["p99_us_median"] - results[base]["p99_us_median"],
            # the same differences taken within each round (runs seconds apart, same noise)
            "p50_us_per_round": [p - b for p, b in zip(P["p50_us_rounds"],
                                                       results[base]["p50_us_rounds"],
                                                       strict=True)],
            "p99_us_per_round": [p - b for p, b in zip(P["p99_us_rounds"],
                                                       results[base]["p99_us_rounds"],
                                                       strict=True)],
        }
        for base in ("raw", "run")
    }

    doc = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": pyplatform.python_version(),
                    "kernel": pyplatform.release(), "loadavg_before": load_before,
                    "loadavg_after": load_after},
        "method": {"tool": "wrk -t1", "rps_connections": args.connections,
                   "latency_connections": 1, "duration_s": args.duration,
                   "rounds": args.rounds, "aggregate": "median over rounds",
                   "body": BODY, "content_type": "application/json",
                   "deepaas_request": "POST /v2/models/echo/predict/ with the same JSON body "
                                      "(webargs 5 reads args from the JSON body)"},
        "deepaas": deepaas_note or f"deepaas {DEEPAAS_VERSION}, --workers {args.replicas}",
        "servers": results,
        "ratios_platform_rps_to": ratios,
        "latency_added_by_platform_us": added,
        "memory": memory,
        "elapsed_s": time.time() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")

    print(render(doc, args))
    try:
        shown = args.out.resolve().relative_to(ROOT)
    except ValueError:
        shown = args.out
    print(f"\nJSON: {shown}")
    return 0 if all(r["errors"] == 0 for r in results.values()) else 1


def render(doc: dict[str, Any], args: argparse.Namespace) -> str:
    res = doc["servers"]
    out: list[str] = []
    m = doc["machine"]
    out.append(f"modelplane data plane — {m['cpus']} CPUs, loadavg "
               f"{m['loadavg_before'][0]:.2f}→{m['loadavg_after'][0]:.2f}; wrk -t1, "
               f"{args.rounds} rounds x {args.duration:g} s, median per figure")
    out.append(f"body: {BODY} (application/json)")
    other = sorted(r["other_load_cores"] for v in res.values()
                   for kind in ("c16", "c1") for r in v["runs"][kind])
    if other:
        out.append(f"other work on the machine during the wrk runs: median {med(other):.2f}, "
                   f"max {other[-1]:.2f} cores (of {m['cpus']})")
        if other[-1] > 0.25:
            out.append("NOTE: other processes took CPU during some runs; p99 and the per-round "
                       "spread carry that noise")
    out.append("")
    tags = {"starlette": "(a)", "raw": "(b)", "run": "(c)", "platform": "(d)", "oscar": "(f)",
            "deepaas": "(e)", "base": "(g)"}
    order = [k for k in tags if k in res]
    ratios = doc["ratios_platform_rps_to"]

    out.append(f"Throughput at concurrency {args.connections} (requests/s)")
    out.append(f"  {'server':44s} {'median':>9s}  {'min … max':>17s}  {'÷ (a)':>6s}  "
               f"{'(d) platform ÷ this':>22s}")
    base_rps = res["starlette"]["rps_median"]
    for k in order:
        r = res[k]
        lo, hi = min(r["rps_rounds"]), max(r["rps_rounds"])
        if k in ratios:
            pr = ratios[k]["per_round"]
            rat = f"{ratios[k]['of_medians']:5.2f}x ({min(pr):.2f}…{max(pr):.2f})"
        else:
            rat = ""
        err = f"  ERRORS {r['errors']}" if r["errors"] else ""
        out.append(f"  {tags[k]} {r['label']:40s} {r['rps_median']:9.0f}  "
                   f"{lo:7.0f} … {hi:7.0f}  {r['rps_median'] / base_rps:5.2f}x  "
                   f"{rat:>22s}{err}")
    if "deepaas" not in res:
        out.append(f"  (e) DEEPaaS: {doc['deepaas']}")
    out.append("  ÷ (a): this median over Starlette's. (d) platform ÷ this: ratio of the medians,")
    out.append("  in brackets the lowest … highest of the per-round ratios (same round, same "
               "noise)")
    if "oscar" in ratios:
        pr = [1 / x for x in ratios["oscar"]["per_round"]]
        out.append(f"  (f) OSCAR /run ÷ (d) native predict: {1 / ratios['oscar']['of_medians']:.2f}x"
                   f" ({min(pr):.2f}…{max(pr):.2f}; goal ≥ 0.80x)")
    if "base" in ratios:
        pr = ratios["base"]["per_round"]
        b = res["base"]["rps_median"]
        out.append(f"  (d) this tree ÷ (g) the --base tree: {ratios['base']['of_medians']:.2f}x "
                   f"({min(pr):.2f}…{max(pr):.2f}); (g) ÷ (a) Starlette "
                   f"{b / base_rps:.2f}x")
    out.append("")

    out.append("Latency at concurrency 1")
    out.append(f"  {'server':44s} {'p50':>11s} {'p99':>11s}  {'req/s':>7s}")
    for k in order:
        r = res[k]
        out.append(f"  {tags[k]} {r['label']:40s} {fmt_us(r['p50_us_median'])} "
                   f"{fmt_us(r['p99_us_median'])}  {r['rps_c1_median']:7.0f}")
    out.append("")
    out.append("Latency added by the platform, (d) minus an in-process server")
    for base, name in (("raw", "(b) raw httptools"), ("run", "(c) modelplane run")):
        a = doc["latency_added_by_platform_us"][base]
        r50, r99 = a["p50_us_per_round"], a["p99_us_per_round"]
        out.append(f"  vs {name:22s} p50 {fmt_delta_us(a['p50_us'])} "
                   f"({min(r50):+.0f}…{max(r50):+.0f})   p99 {fmt_delta_us(a['p99_us'])} "
                   f"({min(r99):+.0f}…{max(r99):+.0f})")
    out.append("  difference of the medians; in brackets lowest … highest per-round difference")
    out.append("")

    mem = doc["memory"]
    out.append("Resident memory (VmRSS), idle")
    out.append(f"  {'process':44s} {'before load':>11s} {'after load':>11s}")
    out.append(f"  {'platform process (modelplane up)':44s} "
               f"{mib(mem['before_load']['platform_rss']):>11s} "
               f"{mib(mem['after_load']['platform_rss']):>11s}")
    after = {r["id"]: r for r in mem["after_load"]["replicas"]}
    for r in mem["before_load"]["replicas"]:
        a = after.get(r["id"], {})
        served = f"  served {a.get('served')}" if a else "  (replaced)"
        out.append(f"  {'replica ' + r['id'] + ' (pid ' + str(r['pid']) + ')':44s} "
                   f"{mib(r['rss']):>11s} {mib(a.get('rss')):>11s}{served}")
    for k, v in mem["other_servers_after_load"].items():
        kids = [c for c in v["children_rss"] if c is not None]
        extra = (f"  + {len(kids)} children {sum(kids) / MIB:.1f} MiB" if kids else "")
        out.append(f"  {tags[k] + ' ' + res[k]['label']:44s} {'':>11s} "
                   f"{mib(v['rss']):>11s}{extra}")
    restarts = mem["after_load"].get("restarts")
    if restarts:
        out.append(f"  NOTE: {restarts} replica restart(s) during the run")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
