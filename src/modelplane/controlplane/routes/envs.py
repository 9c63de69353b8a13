"""``/api/v1/envs``: the per-model Python environments on this node (admin only)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from modelplane.core.auth import current_principal
from modelplane.envs import EnvManager
from modelplane.errors import Forbidden, NotFound
from modelplane.security import Principal

router = APIRouter(tags=["environments"])
Caller = Annotated[Principal, Depends(current_principal)]


def _envs(request: Request, caller: Principal) -> tuple[EnvManager, dict[str, list[str]]]:
    if not caller.admin:  # environments are shared between users' deployments
        raise Forbidden("only an admin may manage the platform's model environments")
    deps = request.app.state.deps
    envs: EnvManager | None = deps.envs
    if envs is None:
        raise NotFound("this platform builds no model environments")
    used: dict[str, list[str]] = {}
    for name, dep in deps.reconciler.deployments.items():
        key = envs.key(dep.spec.model.path)
        if key is not None:
            used.setdefault(key, []).append(name)
    return envs, used


@router.get("/envs", summary="Model environments: key, size, sources, deployments using them")
async def list_envs(request: Request, caller: Caller) -> list[dict[str, Any]]:
    envs, used = _envs(request, caller)
    rows = await asyncio.to_thread(envs.on_disk)
    return [{**row, "used_by": sorted(used.get(str(row["key"]), []))} for row in rows]


@router.post("/envs/prune", summary="Remove the environments no deployment uses")
async def prune_envs(request: Request, caller: Caller) -> dict[str, Any]:
    envs, used = _envs(request, caller)
    before = {str(r["key"]): int(r["bytes"]) for r in await asyncio.to_thread(envs.on_disk)}
    removed = await asyncio.to_thread(envs.prune, set(used))
    return {"removed": removed, "freed_bytes": sum(before.get(k, 0) for k in removed)}
