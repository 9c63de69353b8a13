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

import itertools
from urllib.parse import unquote, urlencode

import orjson

from modelplane.errors import NotFound
from modelplane.gateway import deepaas, oip
from modelplane.gateway.http import HttpConnection, Request
from modelplane.gateway.swagger_ui import SwaggerUi
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
        self._numbers = itertools.count()

    def __call__(self, req: Request, conn: HttpConnection) -> None:
        path = req.url.partition(b"?")[0]
        if path.startswith(b"/v2") and self._oip(req, conn, path.rstrip(b"/")):
            return
        if self._deepaas and (
            path in (b"/", b"/v2", b"/swagger.json", b"/api")
            or path.startswith((b"/v2/", b"/api/static/"))
        ):
            deepaas.serve(req, conn, b"", req.url, self._forward_deepaas(req, conn), self._ui)
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
            if status >= 400:
                conn.respond(status, oip.error_body(body), _JSON)
                return
            ctype, header_length = oip.split_content_type(content_type)
            extra = (
                b""
                if header_length is None
                else b"Inference-Header-Content-Length: " + header_length + b"\r\n"
            )
            conn.respond(status, body, ctype, extra)

        meta = b"oip\x00" + urlencode(params).encode()
        self.predictor.submit(req.content_type or _JSON, bytes(req.body), respond, meta)

    def _forward_deepaas(self, req: Request, conn: HttpConnection) -> deepaas.Forward:
        def forward(meta: bytes) -> None:
            self.predictor.submit(
                req.content_type or _JSON,
                bytes(req.body),
                lambda s, c, b: conn.respond(s, b, c),
                b"deepaas\x00" + meta,
            )

        return forward
