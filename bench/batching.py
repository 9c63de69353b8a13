"""Dynamic request batching against no batching, one run, the same model cost.

Run from the repository root (needs ``wrk``: ``apt-get install wrk``):

    .venv/bin/python bench/batching.py                    # 3 rounds x 4 s each side
    .venv/bin/python bench/batching.py --callers 32 --rounds 5

The model costs what a GPU model typically does: a fixed price per call plus a little per item
(``--fixed-ms`` 5 + ``--per-item-ms`` 0.1), paid by blocking the replica, as a synchronous
framework call does. Two dedicated deployments of it with one replica each, on one platform:
``plain`` (``predict`` per request) and ``batched`` (the same class, its manifest declaring
``batch: {max_size: --max-size, max_wait_ms: --max-wait-ms}``, so the replica calls
``predict_batch``). wrk keeps ``--callers`` requests in flight against each in turn, rounds
interleaved; the figure is batched ÷ plain requests/s (goal ≥ 8× at 32 callers).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dataplane import Server, lua_script, terminate_as_exit, wrk  # bench/ is not a package
from jobs import Platform

MODEL = '''
import time

class Costly:
    """{fixed} ms per call plus {per_item} ms per input, like one forward pass of a GPU model."""

    def predict(self, inputs):
        time.sleep(({fixed} + {per_item}) / 1000)
        return inputs

    def predict_batch(self, batch):
        time.sleep(({fixed} + {per_item} * len(batch)) / 1000)
        return batch
'''


def model_folder(root: Path, name: str, args: argparse.Namespace, batched: bool) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "costly.py").write_text(MODEL.format(fixed=args.fixed_ms, per_item=args.per_item_ms))
    manifest = {"name": name, "entrypoint": "costly:Costly"}
    if batched:
        manifest["batch"] = {"max_size": args.max_size, "max_wait_ms": args.max_wait_ms}
    (folder / "modelplane.yaml").write_text(json.dumps(manifest))
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--callers", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--fixed-ms", type=float, default=5.0)
    ap.add_argument("--per-item-ms", type=float, default=0.1)
    ap.add_argument("--max-size", type=int, default=32)
    ap.add_argument("--max-wait-ms", type=float, default=2.0)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mp-bench-batching-") as t, terminate_as_exit():
        tmp = Path(t)
        platform = Platform(tmp, replicas=1, watch_interval=5.0)
        try:
            platform.boot()
            servers: dict[str, Server] = {}
            for name in ("plain", "batched"):
                folder = model_folder(tmp, name, args, batched=name == "batched")
                platform.deploy({"name": name, "mode": "dedicated", "scale": {"replicas": 1},
                                 "model": {"path": str(folder)}})
                servers[name] = Server(
                    name, name, [], f"{platform.base}/api/v1/deployments/{name}/predict",
                    tmp / f"{name}.log", headers=platform.server.headers,
                )
            scripts = {n: lua_script(s, tmp) for n, s in servers.items()}
            rps: dict[str, list[float]] = {"plain": [], "batched": []}
            for _ in range(args.rounds):
                for name, server in servers.items():
                    r = wrk(server, scripts[name], args.callers, args.duration)
                    if r["errors"]:
                        raise RuntimeError(f"{name}: {r['errors']} failed requests")
                    rps[name].append(r["rps"])
        finally:
            platform.server.stop()
    plain, batched = statistics.median(rps["plain"]), statistics.median(rps["batched"])
    ratios = [b / p for b, p in zip(rps["batched"], rps["plain"], strict=True)]
    print(f"model: {args.fixed_ms:g} ms + {args.per_item_ms:g} ms/item, 1 replica, "
          f"{args.callers} callers, batch max_size {args.max_size}, "
          f"max_wait_ms {args.max_wait_ms:g}; medians of {args.rounds} rounds")
    print(f"  no batching      {plain:9,.0f} req/s")
    print(f"  dynamic batching {batched:9,.0f} req/s   {batched / plain:.1f}x no batching "
          f"(rounds: {', '.join(f'{x:.1f}x' for x in ratios)}; goal >= 8x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
