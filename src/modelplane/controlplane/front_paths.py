"""The protocol fronts the gateway answers itself, merged into the platform's OpenAPI document.

The Open Inference Protocol (``/v2/…``) and DEEPaaS (``/deepaas/{deployment}/…``) fronts live on
the lean HTTP layer (:mod:`modelplane.gateway.oip`, :mod:`modelplane.gateway.deepaas`), not in
FastAPI, so FastAPI cannot describe them: :func:`install` merges their hand-written path items
(:mod:`~modelplane.controlplane.oip_paths`, :mod:`~modelplane.controlplane.deepaas_paths`) into
``app.openapi()``. They state what the fronts check: names and their patterns, bodies with their
required fields and enums, every status a front answers with the body it sends. OSCAR's routes
are FastAPI routes (:mod:`modelplane.oscar.router`) and document themselves.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

from modelplane.controlplane import deepaas_paths, oip_paths
from modelplane.controlplane.front_parts import FRONT_ERROR


def merge(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (FastAPI's document) with the fronts' paths and schemas added."""
    paths = {**oip_paths.paths(), **deepaas_paths.paths()}
    clash = set(paths) & set(doc["paths"])
    assert not clash, f"FastAPI already documents {sorted(clash)}"
    doc["paths"].update(paths)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["FrontError"] = copy.deepcopy(FRONT_ERROR)
    schemas.update(copy.deepcopy(oip_paths.SCHEMAS))
    schemas.update(copy.deepcopy(deepaas_paths.SCHEMAS))
    schemes = doc["components"].setdefault("securitySchemes", {})
    schemes.setdefault("HTTPBearer", {"type": "http", "scheme": "bearer"})
    return doc


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` FastAPI's document with the fronts' paths merged in (once)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = merge(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
