"""``/api/v1/deployments``: create, list, show, update, delete, logs, predict."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from modelplane.controlplane.auth import current_principal, prediction_principal
from modelplane.controlplane.service import Deployments
from modelplane.errors import DeploymentNotFound
from modelplane.security import Principal
from modelplane.spec import DeploymentSpec

router = APIRouter(tags=["deployments"])
Caller = Annotated[Principal, Depends(current_principal)]


def _service(request: Request) -> Deployments:
    return Deployments(request.app.state.deps)


Service = Annotated[Deployments, Depends(_service)]


@router.post("/deployments", status_code=201, summary="Create a deployment")
async def create(spec: DeploymentSpec, caller: Caller, svc: Service) -> dict[str, Any]:
    return await svc.create(spec, caller)


@router.get("/deployments", summary="List your deployments with their status")
async def list_(caller: Caller, svc: Service) -> list[dict[str, Any]]:
    return await svc.list(caller)


@router.get("/deployments/{name}", summary="A deployment, its status and recent events")
async def get(name: str, caller: Caller, svc: Service) -> dict[str, Any]:
    return await svc.get(name, caller)


@router.put("/deployments/{name}", summary="Replace a deployment's spec (replicas roll over)")
async def update(name: str, spec: DeploymentSpec, caller: Caller, svc: Service) -> dict[str, Any]:
    return await svc.update(name, spec, caller)


@router.delete("/deployments/{name}", status_code=204, summary="Remove a deployment")
async def delete(name: str, caller: Caller, svc: Service) -> Response:
    await svc.delete(name, caller)
    return Response(status_code=204)


@router.get("/deployments/{name}/logs", summary="The model's own output and platform events")
async def logs(
    name: str,
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
        "starts with their durations. Kept in memory: a restart starts afresh."
    ),
)
async def metrics(
    name: str,
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
)
async def predict(
    name: str, request: Request, caller: Annotated[Principal, Depends(prediction_principal)]
) -> Response:
    gateway = request.app.state.deps.gateway
    pool = gateway.pools.get(name)
    if pool is None or not caller.can_predict(name, pool.owner):
        raise DeploymentNotFound(name)
    body = await request.body()
    done: asyncio.Future[tuple[int, bytes, bytes]] = asyncio.get_running_loop().create_future()

    def reply(status: int, ctype: bytes, payload: bytes) -> None:
        if not done.done():
            done.set_result((status, ctype, payload))

    pool.submit(
        request.headers.get("content-type", "application/json").encode("latin-1"), body, reply
    )
    status, ctype, payload = await done
    headers = {"retry-after": "2"} if status == 503 else None
    return Response(
        payload, status_code=status, media_type=ctype.decode("latin-1"), headers=headers
    )
