"""The DEEPaaS front, gateway side: DEEPaaS v2's REST paths, for one model.

On the platform the paths live under ``/deepaas/{deployment}`` (so
``POST /deepaas/{deployment}/v2/models/{model}/predict/``); ``modelplane run`` serves them at
the root, like ``deepaas-run``. The version documents are answered here; everything about the
model (its metadata, the OpenAPI document, predictions) goes to a replica with the raw body, and
the replica's codec (:mod:`modelplane.fronts.deepaas`) decodes and encodes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from modelplane.errors import NotFound
from modelplane.fronts.deepaas import pack_params
from modelplane.gateway import render
from modelplane.gateway.http import HttpConnection, Request
from modelplane.gateway.reply import PredictRequest
from modelplane.gateway.swagger_ui import SwaggerUi

if TYPE_CHECKING:  # the gateway proper is not needed (nor importable) in a model's env
    from modelplane.gateway.dataplane import DataPlane
    from modelplane.gateway.training import TrainingBook

PREFIX = b"/deepaas/"
_JSON_UTF8 = b"application/json; charset=utf-8"
_MODEL = re.compile(rb"^/v2/models/([^/]+)/$")
_PREDICT = re.compile(rb"^/v2/models/([^/]+)/predict/$")
_TRAIN = re.compile(rb"^/v2/models/([^/]+)/train/$")
_TRAINING = re.compile(rb"^/v2/models/([^/]+)/train/([^/]+)$")
Train = Callable[[str, str, str, Request, HttpConnection], None]
"""``(op, model name, uuid, request, connection)``: start | list | get | cancel a training."""
Forward = Callable[[bytes], None]
"""Sends the request to a replica with the given frame meta."""


def route(method: bytes, path: bytes) -> tuple[str, bytes, bytes]:
    """``(kind, op, model name)`` for a path relative to the front's base.

    kind: ``versions``/``v2`` (answered here), ``forward``, ``redirect`` (DEEPaaS adds the
    trailing slash with a 308), ``method`` (405) or ``missing`` (404).
    """
    if path in (b"", b"/"):
        return _want(method, b"GET", "versions", b"", b"")
    if path == b"/v2/":
        return _want(method, b"GET", "v2", b"", b"")
    if path == b"/v2/debug/":
        return _want(method, b"GET", "debug", b"", b"")
    if path == b"/api":
        return _want(method, b"GET", "api", b"", b"")
    if path.startswith(b"/api/static/"):
        return _want(method, b"GET", "asset", b"", path[len(b"/api/static/") :])
    if path == b"/v2/models/":
        return _want(method, b"GET", "forward", b"models", b"")
    if path == b"/swagger.json":
        return _want(method, b"GET", "forward", b"swagger", b"")
    found = _PREDICT.match(path)
    if found:
        return _want(method, b"POST", "forward", b"predict", found.group(1))
    found = _TRAIN.match(path)
    if found:
        op = {b"POST": b"start", b"GET": b"list"}.get(method)
        return ("train", op, found.group(1)) if op else ("method", b"GET, POST", b"")
    found = _TRAINING.match(path)
    if found:
        op = {b"GET": b"get", b"DELETE": b"cancel"}.get(method)
        name = found.group(1) + b"/" + found.group(2)
        return ("train", op, name) if op else ("method", b"GET, DELETE", b"")
    found = _MODEL.match(path)
    if found:
        return _want(method, b"GET", "forward", b"model", found.group(1))
    if not path.endswith(b"/") and route(method, path + b"/")[0] not in ("missing",):
        return "redirect", b"", b""
    return "missing", b"", b""


def _want(
    method: bytes, allowed: bytes, kind: str, op: bytes, name: bytes
) -> tuple[str, bytes, bytes]:
    return (kind, op, name) if method == allowed else ("method", allowed, b"")


def versions_doc(base: str) -> dict[str, Any]:
    return {
        "versions": [v2_doc(base)],
        "links": [
            {"rel": "help", "type": "text/html", "href": f"{base}/api"},
            {"rel": "describedby", "type": "application/json", "href": f"{base}/swagger.json"},
        ],
    }


def v2_doc(base: str) -> dict[str, Any]:
    return {
        "version": "stable",
        "id": "v2",
        "links": [{"rel": "self", "type": "application/json", "href": f"{base}/v2/"}],
    }


def serve(
    req: Request,
    conn: HttpConnection,
    base: bytes,
    rest: bytes,
    forward: Forward,
    ui: SwaggerUi,
    train: Train | None = None,
) -> None:
    """Answer one DEEPaaS request whose URL is ``base + rest``."""
    path, _, query = rest.partition(b"?")
    kind, op, name = route(req.method, path)
    base_s = base.decode("latin-1")
    if kind == "forward":
        forward(pack_params(op, base + path, name, query, req.headers))
    elif kind == "train" and train is not None:
        model, _, uid = name.decode("latin-1").partition("/")
        train(op.decode(), model, uid, req, conn)
    elif kind == "versions":
        conn.respond(200, orjson.dumps(versions_doc(base_s)), _JSON_UTF8)
    elif kind == "v2":
        conn.respond(200, orjson.dumps(v2_doc(base_s)), _JSON_UTF8)
    elif kind == "debug":  # as deepaas-run without --debug: nothing to show
        conn.respond(204, b"", b"text/plain")
    elif kind == "api":
        conn.respond(200, ui.page(base_s, base_s or "model"), b"text/html; charset=utf-8")
    elif kind == "asset":
        found = ui.asset(name.decode("latin-1"))
        if found is None:
            raise NotFound(f"no Swagger UI asset {name.decode('latin-1')!r}")
        conn.respond(200, found[1], found[0])
    elif kind == "redirect":
        location = base + path + b"/" + (b"?" + query if query else b"")
        conn.respond(
            308, b"308: Permanent Redirect", b"text/plain", b"location: " + location + b"\r\n"
        )
    elif kind == "method":
        body = orjson.dumps(
            {"error": "method_not_allowed", "message": f"use {op.decode()} on this path"}
        )
        conn.respond(405, body, b"application/json", b"allow: " + op + b"\r\n")
    else:
        raise NotFound(
            f"no DEEPaaS route {req.method.decode()} {path.decode('latin-1')}",
            hint="DEEPaaS paths: /, /v2/, /v2/models/, /v2/models/{name}/, "
            "POST /v2/models/{name}/predict/, /v2/models/{name}/train/, /swagger.json, /api",
        )


class DeepaasRouter:
    """``/deepaas/{deployment}/…`` on the platform's gateway."""

    def __init__(
        self,
        dataplane: DataPlane,
        ui: SwaggerUi | None = None,
        trainings: TrainingBook | None = None,
    ) -> None:
        self.dataplane = dataplane
        self.ui = ui or SwaggerUi()
        self.trainings = trainings

    def __call__(self, req: Request, conn: HttpConnection) -> None:
        rest = req.url[len(PREFIX) :]
        end = len(rest)
        for sep in (b"/", b"?"):
            i = rest.find(sep)
            if i != -1:
                end = min(end, i)
        name = rest[:end].decode("latin-1")
        if not name:
            raise NotFound("no deployment named", hint="use /deepaas/{deployment}/v2/models/")
        self.dataplane.check(name, req.authorization)  # 401 and 404 before anything else
        base = PREFIX + rest[:end]

        def forward(meta: bytes) -> None:
            request = PredictRequest(
                req.content_type,
                req.body,
                authorization=req.authorization,
                meta=b"deepaas\x00" + meta,
            )
            self.dataplane.submit(name, request, lambda reply: render.respond(conn, reply))

        book = self.trainings
        train: Train | None = None
        if book is not None:

            def train(op: str, model: str, uid: str, r: Request, c: HttpConnection) -> None:
                book.handle(name, op, model, uid, r, c)

        serve(req, conn, base, rest[end:], forward, self.ui, train)
