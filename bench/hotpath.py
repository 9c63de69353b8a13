"""The Python cost of one prediction on each side of the replica link, without sockets.

    .venv/bin/python bench/hotpath.py                 # µs per request, platform and replica side
    .venv/bin/python bench/hotpath.py --profile platform   # cProfile of the platform side

The platform side is the real gateway (``HttpConnection`` → ``Gateway`` → ``DataPlane`` →
``DeploymentPool`` → ``ReplicaConnection`` and back through the renderer) with transports that
only keep what is written: each round, 16 connections each get one request (as wrk -c16 sends
them), the loop turns once (the replica link's coalesced flush), and the 16 answers come back in
one read. The OSCAR ``/run`` front is measured the same way. The replica side is the real
``ReplicaProtocol`` with the echo model, fed the 16 request frames in one read.

Only this process's Python work is timed (``time.process_time`` over many rounds); the syscalls
and the kernel's loopback work are not, so the figures are an A/B measure of our own code, steady
on a busy machine where wall-clock req/s is not. Compare two trees by running this script from
each (the figures are of the ``modelplane`` that is imported).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import uvloop

from modelplane.gateway.dataplane import DataPlane
from modelplane.gateway.http import HttpConnection, HttpLimits, Sweeper
from modelplane.gateway.replicas import ReplicaConnection
from modelplane.gateway.router import Gateway
from modelplane.metrics import Metrics
from modelplane.model.loader import load_model
from modelplane.security import Principal, TokenCache, authenticator, hash_token
from modelplane.worker.protocol import (
    HEADER,
    FrameReader,
    Kind,
    hello_frame,
    request_frame,
    response_frame,
    split_request,
)
from modelplane.worker.server import ReplicaProtocol

ROOT = Path(__file__).resolve().parents[1]
ECHO = ROOT / "examples" / "echo"
BODY = b'{"inputs": [1, 2, 3], "name": "bench"}'
TOKEN = "mp_benchtoken"
CONNS = 16


class Sink:
    """A transport that keeps what is written."""

    def __init__(self) -> None:
        self.out: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def writelines(self, data: Any) -> None:
        self.out.append(b"".join(data))

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def http_request(path: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: {len(BODY)}\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    ).encode() + BODY


def answers_for(frames: bytes) -> bytes:
    """The echo replica's answers to request frames (made outside the timed part)."""
    out = []
    offset = 0
    while offset < len(frames):
        length, rid, _kind = HEADER.unpack_from(frames, offset)
        payload = frames[offset + HEADER.size : offset + HEADER.size + length]
        offset += HEADER.size + length
        _, _, body = split_request(payload)
        out.append(response_frame(rid, 200, b"application/json", body))
    return b"".join(out)


async def platform_side(rounds: int, path: str, oscar_dir: Path | None) -> float:
    admin = Principal("admin", admin=True, token=1)
    digest = hash_token(TOKEN)
    tokens = TokenCache(lambda d: admin if d == digest else None)
    dataplane = DataPlane(authenticator(tokens), Metrics())
    name = "echo" if oscar_dir is None else "oscar-echo"
    dataplane.add_deployment(name, "admin")
    gateway = Gateway(dataplane, fallback=lambda r, c: None)
    if oscar_dir is not None:
        gateway.add_front(*_oscar_front(dataplane, oscar_dir))
    link = ReplicaConnection(dataplane.on_hello, dataplane.on_lost)
    link_out = Sink()
    link.connection_made(link_out)  # type: ignore[arg-type]
    dataplane.expect("r1", name, "s")
    link.data_received(hello_frame({"replica_id": "r1", "deployment": name, "secret": "s"}))
    sweeper = Sweeper()
    conns = []
    sinks = []
    for _ in range(CONNS):
        conn = HttpConnection(gateway, HttpLimits(), sweeper)
        sink = Sink()
        conn.connection_made(sink)  # type: ignore[arg-type]
        conns.append(conn)
        sinks.append(sink)
    request = http_request(path)
    timed = 0.0
    for i in range(rounds):
        t0 = time.process_time()
        for conn in conns:
            conn.data_received(request)
        await asyncio.sleep(0)  # the link's flush
        timed += time.process_time() - t0
        frames = b"".join(link_out.out)
        link_out.out.clear()
        answers = answers_for(frames)
        t0 = time.process_time()
        link.data_received(answers)
        timed += time.process_time() - t0
        if i == 0:
            assert sinks[0].out and b" 200 " in sinks[0].out[0], sinks[0].out
        for sink in sinks:
            sink.out.clear()
    return timed / (rounds * CONNS) * 1e6


def _oscar_front(dataplane: DataPlane, folder: Path) -> tuple[bytes, Any]:
    from modelplane.oscar.front import OscarRunFront
    from modelplane.oscar.records import DEFINITION, Record

    class Records:
        def folder(self, name: str) -> Path:
            return folder / name

        def read(self, name: str) -> Record | None:
            return Record(
                name=name, definition={"name": name, "visibility": "private"}, script=None, token=""
            )

    (folder / "oscar-echo").mkdir(parents=True, exist_ok=True)
    (folder / "oscar-echo" / DEFINITION).write_text("{}")
    front = OscarRunFront(dataplane, Records(), lambda r, c: None)  # type: ignore[arg-type]
    return front.prefix, front.handle


async def replica_side(rounds: int) -> float:
    model = load_model(str(ECHO), None, "auto")
    model.load()
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    proto = ReplicaProtocol(model, b"", done)
    sink = Sink()
    proto.connection_made(sink)  # type: ignore[arg-type]
    sink.out.clear()
    frames = b"".join(request_frame(i + 1, b"application/json", BODY) for i in range(CONNS))
    timed = 0.0
    for i in range(rounds):
        t0 = time.process_time()
        proto.data_received(frames)
        await asyncio.sleep(0)
        timed += time.process_time() - t0
        if i == 0:
            got: list[tuple[int, int, bytes]] = []
            FrameReader(lambda k, r, p, got=got: got.append((k, r, p))).feed(b"".join(sink.out))
            assert len(got) == CONNS and got[0][0] == Kind.RESPONSE, got
            assert got[0][2].endswith(orjson.dumps(orjson.loads(BODY))), got[0]
        sink.out.clear()
    return timed / (rounds * CONNS) * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=4000, help="rounds of 16 requests per sample")
    ap.add_argument("--samples", type=int, default=7)
    ap.add_argument("--profile", choices=["platform", "oscar", "replica"], default=None)
    ap.add_argument(
        "--only",
        choices=["platform", "oscar", "replica"],
        default=None,
        help="run one case once, quietly (for instruction counts under callgrind)",
    )
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mp-hot-") as tmp:
        oscar_dir = Path(tmp)
        cases = {
            "platform": lambda: platform_side(
                args.rounds, "/api/v1/deployments/echo/predict", None
            ),
            "oscar": lambda: platform_side(args.rounds, "/run/oscar-echo", oscar_dir),
            "replica": lambda: replica_side(args.rounds),
        }
        if args.only:
            uvloop.run(cases[args.only]())
            return 0
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            uvloop.run(cases[args.profile]())
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(30)
            return 0
        figures: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.samples):
            for key, case in cases.items():
                figures[key].append(uvloop.run(case()))
        print(
            f"Python µs per request (median of {args.samples} samples of {args.rounds} x {CONNS}):"
        )
        for key, xs in figures.items():
            print(
                f"  {key:9s} {statistics.median(xs):6.2f}   (min {min(xs):.2f}, max {max(xs):.2f})"
            )
        print(orjson.dumps({k: statistics.median(v) for k, v in figures.items()}).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
