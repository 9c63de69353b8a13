"""``create_app(deps)``: the FastAPI control plane. Everything it needs comes in ``deps``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelplane import __version__
from modelplane.controlplane import front_paths, ui
from modelplane.controlplane.routes import (
    advise,
    batches,
    deployments,
    envs,
    export,
    jobs,
    models,
    system,
    users,
)
from modelplane.core.deps import Deps
from modelplane.errors import ModelplaneError
from modelplane.oscar.router import router as oscar_router

log = logging.getLogger("modelplane.api")


def create_app(deps: Deps) -> FastAPI:
    app = FastAPI(
        title="modelplane",
        version=__version__,
        description="Serve trained models serverless, dedicated, locally or on your own cloud.",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.deps = deps
    app.include_router(deployments.router, prefix="/api/v1")
    app.include_router(export.router, prefix="/api/v1")
    app.include_router(users.router, prefix="/api/v1")
    app.include_router(envs.router, prefix="/api/v1")
    app.include_router(models.router, prefix="/api/v1")
    app.include_router(advise.router, prefix="/api/v1")
    if deps.jobs is not None:
        app.include_router(jobs.router, prefix="/api/v1")
    if deps.batches is not None:
        app.include_router(batches.router, prefix="/api/v1")
    app.include_router(system.router)
    app.include_router(oscar_router)  # OSCAR's API at the root: /system, /run, /job, /health
    app.include_router(ui.router)  # the dashboard at /, over the API above
    front_paths.install(app)  # the gateway's own fronts: OIP /v2, DEEPaaS /deepaas
    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ModelplaneError)
    async def on_domain_error(_request: Request, exc: ModelplaneError) -> JSONResponse:
        headers = {}
        retry = exc.retry_after_header
        if retry is not None:
            headers["retry-after"] = retry
        if exc.status == 401:
            headers["www-authenticate"] = "Bearer"
        return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            detail = next(e for e in errors if e.get("type") == "json_invalid")
            bad_json: dict[str, Any] = {
                "error": "invalid_input",
                "message": "request body is not valid JSON: "
                + str(detail.get("ctx", {}).get("error", "")),
            }
            return JSONResponse(bad_json, status_code=400)
        problems = []
        for e in errors:
            loc = [str(p) for p in e.get("loc", ()) if p != "body"]
            msg = str(e.get("msg", "")).removeprefix("Value error, ")
            if e.get("type") == "extra_forbidden":
                msg = "unknown field"
            problems.append({"field": ".".join(loc) or "body", "message": msg})
        text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        body: dict[str, Any] = {
            "error": "invalid_spec",
            "message": f"invalid request: {text}",
            "details": {"problems": problems},
        }
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": code, "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def on_bug(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(
            {"error": "internal_error", "message": f"{type(exc).__name__}: {exc}"}, status_code=500
        )
