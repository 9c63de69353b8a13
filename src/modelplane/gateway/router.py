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
CACHED_URLS = 4096

Handler = Callable[[Request, HttpConnection], None]


class Gateway:
    def __init__(self, dataplane: DataPlane, fallback: Handler) -> None:
        self.dataplane = dataplane
        self.fallback = fallback
        self.fronts: list[tuple[bytes, Handler]] = []
        self._names: dict[bytes, str] = {}
        """Predict URL -> its deployment: the same few come again and again, and a lookup
        costs less than taking one apart. Other URLs are not kept: an upload's URL names its new
        object, so each one is new, and remembering them grew the platform with every job."""

    def add_front(self, prefix: bytes, handler: Handler) -> None:
        """Route requests whose URL starts with ``prefix`` to a protocol front's handler."""
        self.fronts.append((prefix, handler))

    def __call__(self, req: Request, conn: HttpConnection) -> None:
        url = req.url
        name = self._names.get(url)
        if name is None:
            name = self._predict_name(url)
        if name is not None and req.method == b"POST":
            self.dataplane.submit(
                name,
                PredictRequest(req.content_type, req.body, authorization=req.authorization),
                lambda reply: render.respond(conn, reply),
            )
            return
        for prefix, handler in self.fronts:
            if url.startswith(prefix):
                handler(req, conn)
                return
        self.fallback(req, conn)

    def _predict_name(self, url: bytes) -> str | None:
        name: str | None = None
        if url.startswith(PREDICT_PREFIX):
            path = url.partition(b"?")[0]
            if path.endswith(PREDICT_SUFFIX):
                raw = path[len(PREDICT_PREFIX) : -len(PREDICT_SUFFIX)]
                if raw and b"/" not in raw:
                    name = raw.decode("latin-1")
        if name is not None:
            if len(self._names) >= CACHED_URLS:  # bounded: query strings make URLs endless
                self._names.clear()
            self._names[url] = name
        return name
