"""Entry point of a replica process: ``python -m modelplane.worker``.

The replica loads its model first and only then connects to the gateway and says hello, so the
gateway can never route a request to a replica that is still loading.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import traceback
from collections.abc import Callable

from modelplane.worker.protocol import hello_frame
from modelplane.worker.server import ReplicaProtocol

EXIT_LOAD_FAILED = 3
SECRET_ENV = "MODELPLANE_REPLICA_SECRET"
DIE_WITH_ENV = "MODELPLANE_DIE_WITH"
"""Comma-separated pids this replica must not outlive (on Ray: the actors that own it)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="modelplane-worker")
    p.add_argument("--connect", required=True, help="unix:/path or tcp:host:port of the gateway")
    p.add_argument("--replica-id", required=True)
    p.add_argument("--deployment", required=True)
    p.add_argument("--model-path", required=True)
    p.add_argument("--entrypoint", default=None)
    p.add_argument("--loader", default="auto")
    p.add_argument(
        "--secret-fd",
        type=int,
        default=None,
        help="an inherited pipe to read this replica's gateway secret from (then closed)",
    )
    return p.parse_args(argv)


def take_secret(secret_fd: int | None) -> str:
    """This replica's secret for its hello, from the pipe it inherited or, where it cannot have
    one (a replica forked from a template, a Ray actor), from its own environment; either way
    gone before the model's code runs: the pipe closed, the variable removed."""
    from_env = os.environ.pop(SECRET_ENV, "")
    if secret_fd is None:
        return from_env
    with os.fdopen(secret_fd, "rb") as pipe:
        return pipe.read(4096).decode("ascii", "replace").strip()


async def _connect(address: str, factory: Callable[[], asyncio.Protocol]) -> None:
    """Dial the gateway. ``address`` may list several, comma-separated, tried in order: a Ray
    replica gets ``unix:PATH,tcp:HOST:PORT``, and the Unix socket connects only on the
    platform's own machine (same kernel), where it is the cheaper link."""
    loop = asyncio.get_running_loop()
    choices = address.split(",")
    for i, one in enumerate(choices):
        kind, _, rest = one.partition(":")
        try:
            if kind == "unix":
                await loop.create_unix_connection(factory, rest)
            elif kind == "tcp":
                host, _, port = rest.rpartition(":")
                await loop.create_connection(factory, host, int(port))
            else:
                raise ValueError(f"unknown gateway address {one!r}")
            return
        except OSError:
            if i == len(choices) - 1:
                raise


def _die_with(pids: str) -> None:
    """Exit the moment any of ``pids`` exits (a forked replica's owners are not its parent)."""
    loop = asyncio.get_running_loop()
    for pid in filter(None, pids.split(",")):
        try:
            fd = os.pidfd_open(int(pid))
        except (OSError, ValueError):
            os._exit(1)  # already gone
        loop.add_reader(fd, os._exit, 1)


async def serve(args: argparse.Namespace) -> int:
    from modelplane.model.loader import load_model

    info: dict[str, object] = {
        "replica_id": args.replica_id,
        "deployment": args.deployment,
        "pid": os.getpid(),
    }
    # The gateway admits only replicas it started: this secret, made per replica by the
    # reconciler, is what says so, on the local Unix socket as over TCP (another node).
    secret = take_secret(args.secret_fd)
    _die_with(os.environ.pop(DIE_WITH_ENV, ""))
    if secret:
        info["secret"] = secret
    started = time.monotonic()
    try:
        model = load_model(args.model_path, args.entrypoint, args.loader)
        model.load()
    except BaseException as exc:
        traceback.print_exc()
        info["error"] = f"model failed to load: {type(exc).__name__}: {exc}"
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        class _Report(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                # Stay connected until the gateway hangs up: it does so after recording the
                # error, so our exit is never seen before the reason for it.
                transport.write(hello_frame(info))  # type: ignore[attr-defined]

            def connection_lost(self, exc: Exception | None) -> None:
                if not done.done():
                    done.set_result(None)

        try:
            await _connect(args.connect, _Report)
            await asyncio.wait_for(done, 5)
        except (OSError, TimeoutError):
            pass
        return EXIT_LOAD_FAILED
    info["load_seconds"] = round(time.monotonic() - started, 4)
    info["metadata"] = model.metadata.to_dict()
    print(
        f"model {model.metadata.name!r} loaded in {info['load_seconds']} s; serving",
        file=sys.stderr,
        flush=True,
    )
    done = asyncio.get_running_loop().create_future()
    await _connect(args.connect, lambda: ReplicaProtocol(model, hello_frame(info), done))
    await done
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop

        return uvloop.run(serve(args))
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
