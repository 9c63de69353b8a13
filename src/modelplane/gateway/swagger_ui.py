"""A Swagger UI page for a DEEPaaS module (``/api``), with its assets from an installed package.

``deepaas-run`` serves one at ``/api``. Ours loads nothing from a CDN: the page, the script and
the style come from the ``swagger-ui-bundle`` package, so it works on machines without internet.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

_TYPES = {
    ".css": b"text/css; charset=utf-8",
    ".js": b"application/javascript; charset=utf-8",
    ".png": b"image/png",
    ".map": b"application/json",
}


def assets_dir() -> Path | None:
    try:
        import swagger_ui_bundle
    except ImportError:  # pragma: no cover - a dependency of modelplane
        return None
    return Path(swagger_ui_bundle.swagger_ui_path)


class SwaggerUi:
    """The page and its static files; only the files the bundle ships are served."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder if folder is not None else assets_dir()
        names = os.listdir(self.folder) if self.folder is not None else []
        self.files = {n for n in names if Path(n).suffix in _TYPES}

    def page(self, base: str, title: str) -> bytes:
        b = html.escape(base, quote=True)
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)} — DEEPaaS API</title>
<link rel="stylesheet" href="{b}/api/static/swagger-ui.css">
<link rel="icon" type="image/png" href="{b}/api/static/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{b}/api/static/swagger-ui-bundle.js"></script>
<script src="{b}/api/static/swagger-ui-standalone-preset.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: "{b}/swagger.json",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout"
}});
</script>
</body>
</html>
""".encode()

    def asset(self, name: str) -> tuple[bytes, bytes] | None:
        """``(content type, bytes)`` of one shipped file, or None."""
        if self.folder is None or name not in self.files:
            return None
        return _TYPES[Path(name).suffix], (self.folder / name).read_bytes()
