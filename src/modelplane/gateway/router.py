"""The gateway's HTTP router: the hot prediction paths, with everything else handed on.

Routing is a few byte comparisons. ``POST /api/v1/deployments/{name}/predict`` goes straight to
the data plane's entry and back through the native renderer; a protocol front registered with
:meth:`Gateway.add_front` (OIP, DEEPaaS, OSCAR ``/run``) gets the URLs under its prefix; the rest
goes to ``fallback`` (the FastAPI control plane, through the ASGI bridge).
"""

from __future__ import annotations

from collections.abc import Callable

from modelplane.gateway import render
from modelplane.gateway.dataplane import DataPlane
from modelplane.gateway.http import HttpConnection, Request
from modelplane.gateway.reply import PredictRequest

PREDICT_PREFIX = b"/api/v1/deployments/"
PREDICT_SUFFIX = b"/predict"

Handler = Callable[[Request, HttpConnection], None]


class Gateway:
    def __init__(self, dataplane: DataPlane, fallback: Handler) -> None:
        self.dataplane = dataplane
        self.fallback = fallback
        self.fronts: list[tuple[bytes, Handler]] = []

    def add_front(self, prefix: bytes, handler: Handler) -> None:
        """Route requests whose URL starts with ``prefix`` to a protocol front's handler."""
        self.fronts.append((prefix, handler))

    def __call__(self, req: Request, conn: HttpConnection) -> None:
        url = req.url
        if url.startswith(PREDICT_PREFIX) and req.method == b"POST":
            path = url.partition(b"?")[0]
            if path.endswith(PREDICT_SUFFIX):
                name = path[len(PREDICT_PREFIX) : -len(PREDICT_SUFFIX)]
                if name and b"/" not in name:
                    self.dataplane.submit(
                        name.decode("latin-1"),
                        PredictRequest(req.content_type, req.body, authorization=req.authorization),
                        lambda reply: render.respond(conn, reply),
                    )
                    return
        for prefix, handler in self.fronts:
            if url.startswith(prefix):
                handler(req, conn)
                return
        self.fallback(req, conn)
