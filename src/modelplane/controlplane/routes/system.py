"""Health, info and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from modelplane import __version__
from modelplane.core.auth import current_principal
from modelplane.errors import Forbidden
from modelplane.security import Principal

router = APIRouter(tags=["system"])
Caller = Annotated[Principal, Depends(current_principal)]


@router.get("/api/v1/health", summary="Liveness of the platform (no token needed)")
async def health(request: Request) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "ok"}
    runner = getattr(getattr(request.app.state, "deps", None), "runner", None)
    trouble = getattr(runner, "storage_trouble", None)
    # The platform answers; its jobs wait for the buckets' storage (full disk, S3 unreachable).
    body["storage"] = (
        {"status": "ok"} if trouble is None else {"status": "degraded", "error": trouble}
    )
    cluster = getattr(request.app.state, "cluster_info", None)
    if cluster is not None:  # this process's role among the platform processes on the store
        body.update(cluster())
    return body


@router.get("/api/v1/info", summary="Platform version and who you are")
async def info(request: Request, caller: Caller) -> dict[str, Any]:
    settings = request.app.state.deps.settings
    return {
        "version": __version__,
        "local_mode": settings.local,
        "user": caller.user,
        "admin": caller.admin,
        "max_body": settings.max_body,
    }


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request, caller: Caller) -> Response:
    if not caller.admin:  # labels name every user's deployments
        raise Forbidden("only an admin may read the platform's metrics")
    registry = request.app.state.deps.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
