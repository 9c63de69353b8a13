"""What the sandbox adds to a cold start, measured beside the unconfined start in one run.

Run from the repository root (as root, as the platform runs here; bubblewrap installed):

    .venv/bin/python bench/sandbox_cost.py              # 20 starts per case, ~1 min
    .venv/bin/python bench/sandbox_cost.py --repeats 50

For examples/echo (load ~0), each case starts one replica at a time through the real local
backend and waits for its hello on the real replica socket; the figure is backend.start() ->
hello, the replica's whole start-up path except the model's own load (which is ~0 here):
- ``fork``: replicas forked from a warm template (the default). Sandboxed, the template is
  confined once and forks inherit its sandbox, so the added cost should be a pid lookup.
- ``spawn``: a fresh interpreter per replica (``warm_template: false``): bwrap + setpriv exec.
- ``template``: starting the warm template itself (once per deployment generation).
Cases alternate sandboxed/unconfined within each repeat, so machine noise hits both alike.
Prints medians and p90 in ms, and sandboxed - unconfined (goal for fork: <= 5 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from modelplane.backends.base import ReplicaLaunch
from modelplane.backends.local import LocalProcessBackend
from modelplane.gateway.replicas import ReplicaConnection, ReplicaListener
from modelplane.sandbox import Sandbox, probe
from modelplane.spec import DeploymentSpec

ECHO = Path(__file__).resolve().parents[1] / "examples" / "echo"


class Hellos:
    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[float]] = {}

    def on_hello(self, conn: ReplicaConnection, info: dict[str, Any]) -> None:
        fut = self.waiting.pop(conn.replica_id, None)
        if fut is not None and not fut.done():
            fut.set_result(time.perf_counter())
        conn.stop()

    def on_lost(self, conn: ReplicaConnection) -> None:
        pass


async def one(
    backend: LocalProcessBackend, spec: DeploymentSpec, address: str, hellos: Hellos, rid: str
) -> float:
    fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    hellos.waiting[rid] = fut
    t0 = time.perf_counter()
    handle = await backend.start(ReplicaLaunch(rid, spec, address))
    t1 = await asyncio.wait_for(fut, 30)
    await backend.stop(handle, grace=2)
    return (t1 - t0) * 1000


async def main(repeats: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="mp-sbx-"))
    sock = data / "run" / "replicas.sock"
    hellos = Hellos()
    listener = ReplicaListener(sock, hellos.on_hello, hellos.on_lost)
    await listener.start()
    forbidden = (str(data),)
    sandbox = Sandbox(probe(forbidden), str(sock), data / "cache", forbidden)

    def quiet(*_: str) -> None:
        pass

    backends = {
        "sandboxed": LocalProcessBackend(quiet, sandbox=sandbox),
        "unconfined": LocalProcessBackend(quiet),
    }
    results: dict[tuple[str, str], list[float]] = {}
    n = 0
    for i in range(repeats):
        for kind, backend in backends.items():
            for case in ("template", "fork", "spawn"):
                n += 1
                name = f"echo-{kind[0]}{i}" if case == "template" else f"echo-{kind[0]}"
                warm = case != "spawn"
                spec = DeploymentSpec.parse(
                    {"name": name, "model": {"path": str(ECHO)}, "scale": {"warm_template": warm}}
                )
                if case == "template":
                    t0 = time.perf_counter()
                    await backend.prepare(spec)
                    ms = (time.perf_counter() - t0) * 1000
                    await backend.release(name)
                else:
                    if warm:
                        await backend.prepare(spec)
                    ms = await one(backend, spec, listener.address, hellos, f"{name}-{n}")
                results.setdefault((case, kind), []).append(ms)
    for backend in backends.values():
        await backend.close()
    await listener.close()

    print(f"sandbox cold-start cost, examples/echo, {repeats} starts per case (ms; shared machine)")
    print(f"{'case':10} {'unconfined p50':>15} {'sandboxed p50':>14} {'added p50':>10} "
          f"{'ratio':>6} {'unconf p90':>11} {'sbx p90':>8}")
    for case in ("fork", "spawn", "template"):
        u, s = results[(case, "unconfined")], results[(case, "sandboxed")]
        up, sp = statistics.median(u), statistics.median(s)
        u90, s90 = statistics.quantiles(u, n=10)[-1], statistics.quantiles(s, n=10)[-1]
        print(f"{case:10} {up:15.1f} {sp:14.1f} {sp - up:10.1f} {sp / up:6.2f} "
              f"{u90:11.1f} {s90:8.1f}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    asyncio.run(main(args.repeats))
    sys.exit(0)
