"""``/api/v1/deployments``: create, list, show, update, delete, logs, predict."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from modelplane.controlplane.routes.params import DeploymentName
from modelplane.core.auth import current_principal, refuse_query_tokens
from modelplane.core.deployments import Deployments
from modelplane.gateway.reply import PredictRequest
from modelplane.security import Principal
from modelplane.spec import DeploymentSpec

router = APIRouter(tags=["deployments"])
Caller = Annotated[Principal, Depends(current_principal)]


async def _service(request: Request) -> Deployments:
    return Deployments(request.app.state.deps)


Service = Annotated[Deployments, Depends(_service)]


@router.post("/deployments", status_code=201, summary="Create a deployment")
async def create(spec: DeploymentSpec, caller: Caller, svc: Service) -> dict[str, Any]:
    return await svc.create(spec, caller)


@router.get("/deployments", summary="List your deployments with their status")
async def list_(caller: Caller, svc: Service) -> list[dict[str, Any]]:
    return await svc.list(caller)


@router.get("/deployments/{name}", summary="A deployment, its status and recent events")
async def get(name: DeploymentName, caller: Caller, svc: Service) -> dict[str, Any]:
    return await svc.get(name, caller)


@router.put("/deployments/{name}", summary="Replace a deployment's spec (replicas roll over)")
async def update(
    name: DeploymentName, spec: DeploymentSpec, caller: Caller, svc: Service
) -> dict[str, Any]:
    return await svc.update(name, spec, caller)


@router.delete("/deployments/{name}", status_code=204, summary="Remove a deployment")
async def delete(name: DeploymentName, caller: Caller, svc: Service) -> Response:
    await svc.delete(name, caller)
    return Response(status_code=204)


@router.get("/deployments/{name}/logs", summary="The model's own output and platform events")
async def logs(
    name: DeploymentName,
    caller: Caller,
    svc: Service,
    tail: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> dict[str, Any]:
    await svc.get_row(name, caller)
    lines = await asyncio.to_thread(svc.deps.logs.tail, name, tail)
    return {"deployment": name, "lines": lines}


@router.get(
    "/deployments/{name}/metrics",
    summary="Recent traffic and replicas over time, for charts",
    description=(
        "Points sampled every few seconds (the platform's `history_interval`), newest last, for "
        "the last half hour at most: requests, 5xx errors, 4xx rejections, p50/p99 latency of "
        "each interval, replicas ready/desired/starting, queued requests; and the recent cold "
        "starts with their durations; the service times of the most recent answers as the "
        "gateway measured them (`service_seconds`, oldest first). Kept in memory: a restart "
        "starts afresh."
    ),
)
async def metrics(
    name: DeploymentName,
    caller: Caller,
    svc: Service,
    since: Annotated[float | None, Query(description="only points after this Unix time")] = None,
) -> dict[str, Any]:
    await svc.get_row(name, caller)
    deps = svc.deps
    history = deps.history
    status = deps.reconciler.status(name)
    return {
        "deployment": name,
        "interval": deps.settings.history_interval,
        "points": history.points(name, since) if history is not None else [],
        "cold_starts": status.get("cold_starts", []),
        "summary": history.summary(name) if history is not None else None,
        "service_seconds": [round(x, 6) for x in deps.dataplane.service_times(name)],
    }


@router.post(
    "/deployments/{name}/predict",
    summary="Run a prediction",
    description=(
        "The body is the model's input: JSON (checked against the model's input schema), a "
        "multipart form with files, or a raw file of a type the model accepts. The platform's "
        "gateway answers this path on its fast path; this route documents it and serves it when "
        "the app runs on its own."
    ),
    responses={400: {}, 404: {}, 413: {}, 415: {}, 500: {}, 502: {}, 503: {}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "what the model's metadata says it takes (its input schema, the "
            "file types it accepts); a model without an input schema takes any JSON value",
            "content": {
                "application/json": {"schema": {}},
                "multipart/form-data": {"schema": {"type": "object"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def predict(
    name: DeploymentName, request: Request, _: Annotated[None, Depends(refuse_query_tokens)]
) -> Response:
    prediction = PredictRequest(
        request.headers.get("content-type", "application/json").encode("latin-1"),
        await request.body(),
        authorization=request.headers.get("authorization", "").encode("latin-1"),
    )
    reply = await request.app.state.deps.dataplane.predict(name, prediction)
    if not reply.content_type:  # decided by the data plane: the app's error handler renders it
        assert reply.error is not None
        raise reply.error
    err = reply.error if reply.status in (429, 503) else None
    retry = err.retry_after_header if err is not None else None
    headers = {"retry-after": retry} if retry else None
    return Response(
        reply.body,
        status_code=reply.status,
        media_type=reply.content_type.decode("latin-1"),
        headers=headers,
    )
