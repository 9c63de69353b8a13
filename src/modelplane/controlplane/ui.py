"""Serve the dashboard: ``/`` is its page, ``/ui/…`` its scripts and styles.

The dashboard is static files shipped in the package (``modelplane/dashboard/static``): no build
step, no CDN. Every piece of data it shows comes from the public REST API with the user's token,
so it has no route of its own beyond these files. The strict Content-Security-Policy allows
nothing but this origin, so a prediction's answer rendered into the page can never load or run
anything from elsewhere.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from modelplane.errors import NotFound

STATIC = Path(__file__).resolve().parent.parent / "dashboard" / "static"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}
TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}

router = APIRouter(include_in_schema=False)


def _file(relative: str) -> Response:
    root = STATIC.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFound(f"no dashboard file {relative!r}")
    ctype = (
        TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )
    if ctype.startswith("text/") or ctype.endswith("+xml"):
        ctype += "; charset=utf-8"
    return Response(path.read_bytes(), media_type=ctype, headers=HEADERS)


@router.get("/")
async def index() -> Response:
    return _file("index.html")


@router.get("/ui/{path:path}")
async def asset(path: str) -> Response:
    return _file(path)
