"""``modelplane run``: one model served in-process, no control plane, for trying and debugging.

Paths: ``POST /predict`` (and the platform's ``/api/v1/deployments/{name}/predict``, so the
same client code works against both), ``GET /`` for the model's metadata, ``GET /health``.
A DEEPaaS model also gets DEEPaaS's own paths at the root (``/``, ``/v2/…``, ``/swagger.json``),
so callers of ``deepaas-run`` keep working; its native metadata stays at ``GET /model``.

Every model also speaks the Open Inference Protocol, as a KServe custom predictor must:
``/v2/health/live|ready``, ``/v2/models/{name}[/ready]`` and ``POST /v2/models/{name}/infer``
(for a DEEPaaS model, whose ``/v2/models/{name}`` is DEEPaaS's metadata, health, ready and infer).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlencode

import orjson

from modelplane.errors import NotFound
from modelplane.gateway import deepaas, oip
from modelplane.gateway.http import HttpConnection, Request
from modelplane.gateway.reply import Reply
from modelplane.gateway.swagger_ui import SwaggerUi
from modelplane.gateway.training import TrainingBook, TrainTarget
from modelplane.model.contract import LoadedModel
from modelplane.model.deepaas import DeepaasModel
from modelplane.worker.server import Predictor

_JSON = b"application/json"


class LocalModelServer:
    def __init__(self, model: LoadedModel, name: str | None = None) -> None:
        self.model = model
        self.name = name or model.metadata.name
        self.predictor = Predictor(model)
        self._predict_paths = {
            b"/predict",
            f"/api/v1/deployments/{self.name}/predict".encode(),
        }
        self._metadata = orjson.dumps(model.metadata.to_dict())
        self._deepaas = isinstance(model.instance, DeepaasModel)
        self._ui = SwaggerUi()
        self.trainings: TrainingBook | None = None
        self._numbers = itertools.count()

    def __call__(self, req: Request, conn: HttpConnection) -> None:
        path = req.url.partition(b"?")[0]
        if path.startswith(b"/v2") and self._oip(req, conn, path.rstrip(b"/")):
            return
        if self._deepaas and (
            path in (b"/", b"/v2", b"/swagger.json", b"/api")
            or path.startswith((b"/v2/", b"/api/static/"))
        ):
            deepaas.serve(
                req, conn, b"", req.url, self._forward_deepaas(req, conn), self._ui, self._train
            )
            return
        if req.method == b"POST" and path in self._predict_paths:
            self.predictor.submit(
                req.content_type or _JSON, bytes(req.body), lambda s, c, b: conn.respond(s, b, c)
            )
        elif req.method == b"GET" and path in (b"/", b"/model", b"/api/v1/model"):
            conn.respond(200, self._metadata)
        elif req.method == b"GET" and path in (b"/health", b"/api/v1/health"):
            conn.respond(200, b'{"status":"ok"}')
        else:
            conn.respond_error(
                NotFound(
                    f"no route {req.method.decode()} {path.decode('latin-1')}",
                    hint="POST /predict runs the model; GET / shows its metadata",
                )
            )

    def _oip(self, req: Request, conn: HttpConnection, path: bytes) -> bool:
        """Answer an Open Inference Protocol request; False when the path is not one."""
        get = req.method in (b"GET", b"HEAD")
        if get and path in (b"/v2/health/live", b"/v2/health/ready"):
            key = b"live" if path.endswith(b"live") else b"ready"
            conn.respond(200, b'{"' + key + b'":true}')
            return True
        prefix = b"/v2/models/"
        if not path.startswith(prefix):
            return False
        name, _, action = unquote(path[len(prefix) :].decode("latin-1")).partition("/")
        if name != self.name:
            return False
        if action == "infer" and req.method == b"POST":
            self._infer(req, conn)
        elif action == "ready" and get:
            conn.respond(200, orjson.dumps({"name": self.name, "ready": True}))
        elif action == "" and get and not self._deepaas:
            meta = self.model.metadata
            tensors = (meta.extra or {}).get("tensors") or {}
            body = {
                "name": self.name,
                "versions": [meta.version],
                "platform": "modelplane",
                "inputs": [oip.tensor_metadata(t) for t in tensors.get("inputs") or []],
                "outputs": [oip.tensor_metadata(t) for t in tensors.get("outputs") or []],
            }
            conn.respond(200, orjson.dumps(body))
        else:
            return False
        return True

    def _infer(self, req: Request, conn: HttpConnection) -> None:
        params = {"n": self.name, "r": str(next(self._numbers))}
        length = req.header(b"inference-header-content-length")
        if length is not None:
            params["h"] = length.decode("latin-1").strip()

        def respond(status: int, content_type: bytes, body: bytes) -> None:
            oip.respond(conn, Reply(status, content_type, body))

        meta = b"oip\x00" + urlencode(params).encode()
        self.predictor.submit(req.content_type or _JSON, bytes(req.body), respond, meta)

    def _train(self, op: str, model: str, uid: str, req: Request, conn: HttpConnection) -> None:
        if self.trainings is None:
            raise NotFound("training is not served here")
        self.trainings.handle("run", op, model, uid, req, conn)

    def routes(self) -> list[str]:
        """What this server answers, for the startup line."""
        native = ["POST /predict", f"POST /api/v1/deployments/{self.name}/predict"]
        oip = f"Open Inference Protocol: /v2/health/live|ready, POST /v2/models/{self.name}/infer"
        if not self._deepaas:
            return [*native, "GET / (metadata)", "GET /health", oip]
        m = f"/v2/models/{self.model.instance.name}"
        return [
            *native,
            "GET /model (metadata)",
            "GET /health",
            f"DEEPaaS: GET / /v2/ /v2/models/ {m}/ /swagger.json /api, POST {m}/predict/, "
            f"POST|GET {m}/train/, GET|DELETE {m}/train/{{uuid}}",
            oip,
        ]

    def _forward_deepaas(self, req: Request, conn: HttpConnection) -> deepaas.Forward:
        def forward(meta: bytes) -> None:
            self.predictor.submit(
                req.content_type or _JSON,
                bytes(req.body),
                lambda s, c, b: conn.respond(s, b, c),
                b"deepaas\x00" + meta,
            )

        return forward


async def serve_local(
    folder: str | Path,
    host: str,
    port: int,
    entrypoint: str | None,
    loader: str,
    name: str | None,
    say: Callable[[str], None],
) -> None:
    """``modelplane run``: load the model here, serve it until SIGINT or SIGTERM."""
    from modelplane.gateway.http import serve_http
    from modelplane.model.loader import load_model

    model = load_model(folder, entrypoint, loader)
    started = time.monotonic()
    model.load()
    app = LocalModelServer(model, name)
    if isinstance(model.instance, DeepaasModel):
        from modelplane.settings import default_data_dir

        target = TrainTarget(
            sys.executable,
            str(Path(folder).resolve()),
            entrypoint,
            "deepaas",
            dict(os.environ),
            model_name=model.instance.name,
        )
        app.trainings = TrainingBook(default_data_dir() / "run-trainings", lambda _name: target)
    server = await serve_http(app, host, port)
    bound = server.sockets[0].getsockname()[1]
    say(
        f"{model.metadata.name} loaded in {time.monotonic() - started:.2f} s; serving on "
        f"http://{host}:{bound}  routes: {'; '.join(app.routes())}"
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m modelplane.gateway.local``: what ``modelplane run`` executes in a model's own
    environment (where the CLI's own dependencies are not installed)."""
    p = argparse.ArgumentParser(prog="modelplane-run")
    p.add_argument("folder")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--entrypoint", default=None)
    p.add_argument("--loader", default="auto")
    p.add_argument("--name", default=None)
    a = p.parse_args(argv)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    coro = serve_local(a.folder, a.host, a.port, a.entrypoint, a.loader, a.name, say)
    try:
        import uvloop

        uvloop.run(coro)
    except ImportError:  # pragma: no cover - uvloop is linked into every environment
        asyncio.run(coro)
    return 0


if __name__ == "__main__":
    sys.exit(main())
