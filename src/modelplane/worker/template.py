"""A warm template: a process that has imported a model's code, forking replicas on request.

Spawning a fresh interpreter that imports numpy and scikit-learn costs about a second here;
forking a process that already has them costs milliseconds. So each deployment gets one template
(``python -m modelplane.worker.template``) that imports the worker machinery and the model's
module, but does *not* load weights: a replica forked from it pays only fork + the model's own
``load()``. ``gc.freeze()`` before forking keeps the imported objects' pages shared
copy-on-write between the template and every replica.

Control protocol, over a Unix socket pair handed down by the platform: newline-delimited JSON.
- platform -> template: ``{"op": "spawn", "replica_id", "connect", "deployment", "model_path",
  "entrypoint", "env"}`` with one file descriptor attached (SCM_RIGHTS): the write end of the pipe
  the replica's stdout and stderr go to, so each replica's output stays its own.
- template -> platform: ``{"event": "ready"}`` once imports are done (or ``"import_failed"``),
  ``{"event": "spawned", "replica_id", "pid"}``, ``{"event": "exited", "replica_id", "code"}``.

The template runs no event loop, so a forked child starts a clean one of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import select
import signal
import socket
import sys
import traceback
from typing import Any


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _child(sock: socket.socket, message: dict[str, Any], out_fd: int) -> None:
    """In the forked replica: become our own process, then serve like a spawned worker."""
    code = 1
    try:
        sock.close()
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(out_fd)
        os.environ.update(message.get("env") or {})
        from modelplane.worker import main as worker_main

        args = [
            "--connect",
            message["connect"],
            "--replica-id",
            message["replica_id"],
            "--deployment",
            message["deployment"],
            "--model-path",
            message["model_path"],
        ]
        if message.get("entrypoint"):
            args += ["--entrypoint", message["entrypoint"]]
        args += ["--loader", message.get("loader") or "auto"]
        code = worker_main.main(args)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(control_fd: int, model_path: str, entrypoint: str | None, loader: str = "auto") -> int:
    sock = socket.socket(fileno=control_fd)
    try:
        # Import what every replica needs, model code included, but load no weights.
        import modelplane.worker.main
        import modelplane.worker.server  # noqa: F401
        from modelplane.model.loader import get_loader

        with contextlib.suppress(ImportError):
            import uvloop  # noqa: F401
        get_loader(loader, model_path, entrypoint).prepare(model_path, entrypoint)
    except BaseException as exc:
        traceback.print_exc()
        _send(sock, {"event": "import_failed", "error": f"{type(exc).__name__}: {exc}"})
        return 3
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: None)
    children: dict[int, str] = {}
    gc.collect()
    gc.freeze()
    _send(sock, {"event": "ready", "pid": os.getpid()})
    buffer = b""
    while True:
        readable, _, _ = select.select([sock.fileno(), wake_r], [], [])
        if wake_r in readable:
            os.read(wake_r, 512)
            while children:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                rid = children.pop(pid, "")
                _send(
                    sock,
                    {"event": "exited", "replica_id": rid, "pid": pid, "code": _exit_code(status)},
                )
        if sock.fileno() in readable:
            data, fds, _flags, _addr = socket.recv_fds(sock, 65536, 8)
            if not data:
                break  # the platform is gone: so are we (replicas notice on their own)
            buffer += data
            pending_fds = list(fds)
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                message = json.loads(line)
                if message.get("op") != "spawn" or not pending_fds:
                    continue
                out_fd = pending_fds.pop(0)
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _child(sock, message, out_fd)
                os.close(out_fd)
                children[pid] = message["replica_id"]
                _send(sock, {"event": "spawned", "replica_id": message["replica_id"], "pid": pid})
            for fd in pending_fds:
                os.close(fd)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="modelplane-template")
    p.add_argument("--control-fd", type=int, required=True)
    p.add_argument("--model-path", required=True)
    p.add_argument("--entrypoint", default=None)
    p.add_argument("--loader", default="auto")
    args = p.parse_args(argv)
    return serve(args.control_fd, args.model_path, args.entrypoint, args.loader)


if __name__ == "__main__":
    sys.exit(main())
