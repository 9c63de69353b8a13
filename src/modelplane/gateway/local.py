"""``modelplane run``: one model served in-process, no control plane, for trying and debugging.

Paths: ``POST /predict`` (and the platform's ``/api/v1/deployments/{name}/predict``, so the
same client code works against both), ``GET /`` for the model's metadata, ``GET /health``.
A DEEPaaS model also gets DEEPaaS's own paths at the root (``/``, ``/v2/…``, ``/swagger.json``),
so callers of ``deepaas-run`` keep working; its native metadata stays at ``GET /model``.
"""

from __future__ import annotations

import orjson

from modelplane.errors import NotFound
from modelplane.gateway import deepaas
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

    def __call__(self, req: Request, conn: HttpConnection) -> None:
        path = req.url.partition(b"?")[0]
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

    def _forward_deepaas(self, req: Request, conn: HttpConnection) -> deepaas.Forward:
        def forward(meta: bytes) -> None:
            self.predictor.submit(
                req.content_type or _JSON,
                bytes(req.body),
                lambda s, c, b: conn.respond(s, b, c),
                b"deepaas\x00" + meta,
            )

        return forward
