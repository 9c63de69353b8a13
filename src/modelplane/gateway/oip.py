"""Open Inference Protocol v2 (KServe/Triton), the gateway's half: routes, health and metadata.

Health and metadata are answered here, from what the gateway and the reconciler know (the
metadata a replica reported when it loaded, its ready replicas). An infer request goes to a
replica as raw bytes: this router reads only the path and the ``Inference-Header-Content-Length``
header, and the replica's codec (:mod:`modelplane.fronts.oip`) decodes the tensors. The codec
reports the length of the response's JSON header in a content-type parameter, which becomes the
``Inference-Header-Content-Length`` response header here.

``{name}`` in ``/v2/models/{name}`` is a deployment's name. Health and server metadata need no
token (they are probes); model routes take the same bearer token as the native API.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlencode

import orjson

from modelplane import __version__
from modelplane.errors import (
    ModelplaneError,
    NotFound,
    Unavailable,
    UnsupportedMediaType,
)
from modelplane.gateway.http import Handler, HttpConnection, Request
from modelplane.gateway.render import retry_header
from modelplane.gateway.reply import PredictRequest, Reply

if TYPE_CHECKING:  # the gateway proper is not needed (nor importable) in a model's env
    from modelplane.gateway.dataplane import DataPlane

PREFIX = b"/v2"
_MODELS = b"/v2/models/"
_JSON = b"application/json"
HEADER_LENGTH_PARAM = b"inference-header-content-length"
"""Must match :data:`modelplane.fronts.oip.HEADER_LENGTH_PARAM` (not imported: the gateway does
not load numpy)."""
_HEADER_LENGTH = b"Inference-Header-Content-Length"


class DeploymentStatus(Protocol):
    """What the front asks of the reconciler: a deployment's status, with ``model`` metadata."""

    def status(self, name: str) -> dict[str, Any]: ...


class OipFront:
    """Register with ``gateway.add_front(front.prefix, front.handle)``; ``fallback`` answers the
    URLs under the prefix that are not the protocol's (``/v2foo``)."""

    prefix = PREFIX

    def __init__(
        self, dataplane: DataPlane, deployments: DeploymentStatus, fallback: Handler
    ) -> None:
        self.dataplane = dataplane
        self.deployments = deployments
        self.fallback = fallback
        self._numbers = itertools.count()
        self._server = orjson.dumps(
            {"name": "modelplane", "version": __version__, "extensions": ["binary_tensor_data"]}
        )

    def handle(self, req: Request, conn: HttpConnection) -> None:
        path = req.url.partition(b"?")[0]
        if path != PREFIX and not path.startswith(PREFIX + b"/"):
            self.fallback(req, conn)  # e.g. /v2foo: not ours
            return
        try:
            self._route(req, conn, path.rstrip(b"/"))
        except ModelplaneError as exc:
            respond_error(conn, exc)

    def _route(self, req: Request, conn: HttpConnection, path: bytes) -> None:
        get = req.method in (b"GET", b"HEAD")
        if path == PREFIX and get:
            conn.respond(200, self._server)
        elif path == b"/v2/health/live" and get:
            conn.respond(200, b'{"live":true}')
        elif path == b"/v2/health/ready" and get:
            conn.respond(200, b'{"ready":true}')
        elif path.startswith(_MODELS):
            self._model_route(req, conn, path)
        else:
            raise NotFound(f"no route {req.method.decode()} {path.decode('latin-1')}")

    def _model_route(self, req: Request, conn: HttpConnection, path: bytes) -> None:
        parts = [unquote(p.decode("latin-1")) for p in path[len(_MODELS) :].split(b"/")]
        name, rest = parts[0], parts[1:]
        version = ""
        if len(rest) >= 2 and rest[0] == "versions":
            version, rest = rest[1], rest[2:]
        action = rest[0] if len(rest) == 1 else None if rest else ""
        method = req.method
        if name and action == "infer" and method == b"POST":
            self.infer(name, version, req, conn)
        elif name and action == "ready" and method in (b"GET", b"HEAD"):
            self.model_ready(name, version, req, conn)
        elif name and action == "" and method in (b"GET", b"HEAD"):
            self.model_metadata(name, version, req, conn)
        else:
            raise NotFound(f"no route {method.decode()} {path.decode('latin-1')}")

    # -- answered here ------------------------------------------------------------------------
    def model_metadata(self, name: str, version: str, req: Request, conn: HttpConnection) -> None:
        self.dataplane.check(name, req.authorization)  # 401, 404
        meta = self._metadata(name, version)
        if meta is None:
            raise Unavailable(
                f"the metadata of model {name!r} is known once one of its replicas has loaded; "
                "an infer request starts one",
                retry_after=2,
            )
        tensors = (meta.get("extra") or {}).get("tensors") or {}
        body = {
            "name": name,
            "versions": [str(meta.get("version", "0"))],
            "platform": "modelplane",
            "inputs": [tensor_metadata(t) for t in tensors.get("inputs") or []],
            "outputs": [tensor_metadata(t) for t in tensors.get("outputs") or []],
        }
        conn.respond(200, orjson.dumps(body))

    def model_ready(self, name: str, version: str, req: Request, conn: HttpConnection) -> None:
        # A deployment at zero is not ready, yet infer works: the request waits for a cold start.
        self.dataplane.check(name, req.authorization)
        self._metadata(name, version)
        ready = self.dataplane.ready_count(name) > 0
        body: dict[str, Any] = {"name": name, "ready": ready}
        if not ready:
            body["error"] = f"model {name!r} has no ready replica"
        conn.respond(200 if ready else 400, orjson.dumps(body))

    def _metadata(self, name: str, version: str) -> dict[str, Any] | None:
        meta = self.deployments.status(name).get("model")
        if not isinstance(meta, dict):
            return None
        if version and version != str(meta.get("version")):
            raise NotFound(f"model {name!r} has no version {version!r}")
        return meta

    # -- forwarded ----------------------------------------------------------------------------
    def infer(self, name: str, version: str, req: Request, conn: HttpConnection) -> None:
        encoding = req.header(b"content-encoding")
        if encoding is not None and encoding.strip().lower() != b"identity":
            raise UnsupportedMediaType(
                f"compressed requests ({encoding.decode('latin-1')}) are not supported"
            )
        params: dict[str, str] = {"n": name, "r": str(next(self._numbers))}
        if version:
            params["v"] = version
        length = req.header(b"inference-header-content-length")
        if length is not None:
            params["h"] = length.decode("latin-1").strip()
        meta = b"oip\x00" + urlencode(params).encode()
        request = PredictRequest(
            req.content_type, req.body, authorization=req.authorization, meta=meta
        )
        self.dataplane.submit(name, request, lambda reply: respond(conn, reply))


def respond(conn: HttpConnection, reply: Reply) -> None:
    """A reply in the protocol's shape: tensors as the codec encoded them (its header-length
    parameter becomes ``Inference-Header-Content-Length``), errors as ``{"error": message}``."""
    if reply.ok:
        ctype, header_length = split_content_type(reply.content_type)
        extra = b"" if header_length is None else _HEADER_LENGTH + b": " + header_length + b"\r\n"
        conn.respond(reply.status, reply.body, ctype, extra)
        return
    err = reply.error
    assert err is not None
    respond_error(conn, err)


def respond_error(conn: HttpConnection, err: ModelplaneError) -> None:
    """The protocol's error shape: ``{"error": "<message>"}``, with the error's Retry-After
    (and, on 401, the ``WWW-Authenticate: Bearer`` challenge every route sends)."""
    body = orjson.dumps({"error": err.message})
    extra = retry_header(err)
    if err.status == 401:
        extra += b"www-authenticate: Bearer\r\n"
    conn.respond(err.status, body, _JSON, extra)


def split_content_type(content_type: bytes) -> tuple[bytes, bytes | None]:
    """The content type without the header-length parameter, and that parameter's value."""
    if HEADER_LENGTH_PARAM not in content_type:
        return content_type, None
    base, *parameters = content_type.split(b";")
    kept: list[bytes] = []
    length: bytes | None = None
    for parameter in parameters:
        key, _, value = parameter.strip().partition(b"=")
        if key.lower() == HEADER_LENGTH_PARAM:
            length = value.strip()
        else:
            kept.append(parameter)
    return b";".join([base, *kept]), length


def tensor_metadata(t: dict[str, Any]) -> dict[str, Any]:
    return {"name": t.get("name"), "datatype": t.get("datatype"), "shape": t.get("shape")}
