"""``/api/v1/batches``: server-side batch runs over a folder, a bucket prefix or an S3 prefix."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelplane.controlplane.batches import Batches
from modelplane.core.auth import current_principal
from modelplane.security import Principal

router = APIRouter(tags=["batch runs"])
Caller = Annotated[Principal, Depends(current_principal)]


async def _batches(request: Request) -> Batches:  # async: no thread hop per request
    return Batches(request.app.state.deps)


BatchesDep = Annotated[Batches, Depends(_batches)]
_WHERE = (
    "bucket[/prefix] of one of your buckets, s3://bucket/prefix, or (admins) an absolute "
    "folder path on the platform's machine"
)


class ModelRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, max_length=4096, description="a model folder")
    loader: str = Field(default="auto", pattern="^(auto|python|deepaas|oscar)$")
    entrypoint: str | None = Field(default=None, max_length=512)


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cpu: float | None = Field(default=None, gt=0, le=1024)
    memory: str | None = Field(default=None, max_length=32, description="e.g. 2Gi")
    gpu: int | None = Field(default=None, ge=0, le=64)


class BatchRequest(BaseModel):
    """Run ``deployment`` (or a deployment made from ``model`` for this run) over ``input``."""

    model_config = ConfigDict(extra="forbid")
    deployment: str | None = Field(
        default=None, min_length=1, max_length=63, pattern="^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
    )
    model: ModelRef | None = Field(
        default=None,
        description="a model folder: a dedicated deployment is made for this run and removed "
        "after it",
    )
    input: str = Field(min_length=1, max_length=2048, description=_WHERE)
    output: str = Field(min_length=1, max_length=2048, description=_WHERE)
    concurrency: int | None = Field(default=None, ge=1, le=1024, description="inputs in flight")
    replicas: int | None = Field(default=None, ge=1, le=64, description="with model: replicas")
    resources: Resources | None = None

    @model_validator(mode="after")
    def _one_target(self) -> BatchRequest:
        if (self.deployment is None) == (self.model is None):
            raise ValueError("give either deployment or model, not both and not neither")
        if self.deployment is not None and (self.replicas or self.resources):
            raise ValueError("replicas and resources go with model (a run's own deployment)")
        return self


@router.post("/batches", status_code=201, summary="Start a batch run")
async def create(body: BatchRequest, caller: Caller, batches: BatchesDep) -> dict[str, Any]:
    return await batches.create(body.model_dump(mode="json"), caller)


@router.get("/batches", summary="Batch runs, newest first")
async def list_(caller: Caller, batches: BatchesDep) -> dict[str, Any]:
    return {"batches": await batches.runs(caller)}


@router.get("/batches/{batch_id}", summary="A batch run's progress: done, failed, rate, ETA")
async def get(
    batch_id: str,
    caller: Caller,
    batches: BatchesDep,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=60,
            description="seconds to hold the answer until the run has finished (0: at once); "
            "a follower that waits instead of polling learns of the end the moment it comes",
        ),
    ] = 0.0,
) -> dict[str, Any]:
    return await batches.get(batch_id, caller, wait)


@router.get("/batches/{batch_id}/failures", summary="Inputs that failed, with their errors")
async def failures(
    batch_id: str,
    caller: Caller,
    batches: BatchesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> dict[str, Any]:
    return {"failures": await batches.failures(batch_id, caller, limit, offset)}


@router.post("/batches/{batch_id}/retry", summary="Run a finished batch again for its failures")
async def retry(batch_id: str, caller: Caller, batches: BatchesDep) -> dict[str, Any]:
    return await batches.retry(batch_id, caller)


@router.delete("/batches/{batch_id}", summary="Cancel a batch run")
async def cancel(batch_id: str, caller: Caller, batches: BatchesDep) -> dict[str, Any]:
    return await batches.cancel(batch_id, caller)
