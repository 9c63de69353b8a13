"""``/api/v1/deployments/{name}/jobs`` and ``/api/v1/buckets``: asynchronous predictions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from modelplane.controlplane.forms import read_upload
from modelplane.controlplane.routes.params import (
    BucketName,
    DeploymentName,
    ObjectKey,
    OptionalPrefix,
    Prefix,
)
from modelplane.core.auth import current_principal
from modelplane.core.deployments import Deployments
from modelplane.core.jobs import Jobs, job_view, object_view
from modelplane.errors import InvalidInput
from modelplane.security import Principal
from modelplane.storage.keys import BUCKET_SCHEMA, PREFIX_SCHEMA
from modelplane.store.jobs import STATES

router = APIRouter(tags=["jobs and buckets"])
Caller = Annotated[Principal, Depends(current_principal)]


async def _jobs(request: Request) -> Jobs:
    return Jobs(request.app.state.deps)


async def _deployments(request: Request) -> Deployments:
    return Deployments(request.app.state.deps)


JobsDep = Annotated[Jobs, Depends(_jobs)]
DeploymentsDep = Annotated[Deployments, Depends(_deployments)]


@router.post(
    "/deployments/{name}/jobs",
    status_code=201,
    summary="Upload files to the input bucket; each becomes a job",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["files"],
                        "properties": {
                            "files": {
                                "type": "array",
                                "minItems": 1,
                                "items": {"type": "string", "format": "binary"},
                                "description": "each file is stored under its own name "
                                "(below `prefix`) and becomes a job",
                            },
                            "prefix": {"type": "string", **PREFIX_SCHEMA},
                        },
                    }
                }
            },
        }
    },
)
async def upload(
    name: DeploymentName,
    request: Request,
    caller: Caller,
    jobs: JobsDep,
    deployments: DeploymentsDep,
) -> dict[str, Any]:
    row = await deployments.get_row(name, caller)
    upload = await read_upload(request.headers.get("content-type", ""), request.stream())
    prefix = upload.fields.get("prefix", "")
    files = upload.files
    return {"jobs": await jobs.upload(row, files, prefix)}


@router.get("/deployments/{name}/jobs", summary="Jobs of a deployment, oldest first")
async def list_jobs(
    name: DeploymentName,
    caller: Caller,
    jobs: JobsDep,
    deployments: DeploymentsDep,
    state: Annotated[
        str | None, Query(description=", ".join(STATES), json_schema_extra={"enum": list(STATES)})
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> dict[str, Any]:
    if state is not None and state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}")
    row = await deployments.get_row(name, caller)
    return await jobs.list_jobs(row, state, limit, offset)


@router.get("/deployments/{name}/jobs/{job_id}", summary="One job")
async def get_job(
    name: DeploymentName, job_id: str, caller: Caller, jobs: JobsDep, deployments: DeploymentsDep
) -> dict[str, Any]:
    row = await deployments.get_row(name, caller)
    return job_view(await jobs.get(row, job_id))


@router.post(
    "/deployments/{name}/jobs/{job_id}/retry",
    summary="Queue a failed job again, with fresh attempts",
    responses={409: {}},
)
async def retry_job(
    name: DeploymentName, job_id: str, caller: Caller, jobs: JobsDep, deployments: DeploymentsDep
) -> dict[str, Any]:
    row = await deployments.get_row(name, caller)
    return job_view(await jobs.retry(row, job_id))


@router.get(
    "/deployments/{name}/jobs/{job_id}/result",
    summary="A succeeded job's result",
    response_class=Response,
)
async def job_result(
    name: DeploymentName, job_id: str, caller: Caller, jobs: JobsDep, deployments: DeploymentsDep
) -> Response:
    row = await deployments.get_row(name, caller)
    data, ctype, key = await jobs.result(row, job_id)
    return Response(data, media_type=ctype, headers={"x-output-key": key})


class NewBucket(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(json_schema_extra=BUCKET_SCHEMA)


@router.get("/buckets", summary="Your buckets")
async def list_buckets(caller: Caller, jobs: JobsDep) -> list[dict[str, Any]]:
    return await jobs.buckets(caller)


@router.post("/buckets", status_code=201, summary="Create a bucket")
async def create_bucket(body: NewBucket, caller: Caller, jobs: JobsDep) -> dict[str, str]:
    await jobs.ensure_bucket(body.name, caller.user)
    return {"name": body.name, "owner": caller.user}


@router.get("/buckets/{bucket}/objects", summary="Objects in a bucket, by key")
async def list_objects(
    bucket: BucketName,
    caller: Caller,
    jobs: JobsDep,
    prefix: Prefix = "",
    start_after: OptionalPrefix = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> dict[str, Any]:
    import asyncio

    await jobs.check_bucket(bucket, caller)
    objects = await asyncio.to_thread(jobs.storage.list, bucket, prefix, start_after, limit)
    return {"bucket": bucket, "objects": [object_view(o) for o in objects]}


@router.put(
    "/buckets/{bucket}/objects/{key:path}",
    status_code=201,
    summary="Upload an object (a job for every deployment reading this bucket)",
)
async def put_object(
    bucket: BucketName, key: ObjectKey, request: Request, caller: Caller, jobs: JobsDep
) -> dict[str, Any]:
    data = await request.body()
    ctype = request.headers.get("content-type", "application/octet-stream")
    info, created = await jobs.put_object(bucket, key, data, ctype, caller)
    return {"object": object_view(info), "jobs": [job_view(j) for j in created]}


@router.get(
    "/buckets/{bucket}/objects/{key:path}", summary="Download an object", response_class=Response
)
async def get_object(bucket: BucketName, key: ObjectKey, caller: Caller, jobs: JobsDep) -> Response:
    import asyncio

    await jobs.check_bucket(bucket, caller)
    info = await asyncio.to_thread(jobs.storage.head, bucket, key)
    data = await asyncio.to_thread(jobs.storage.get, bucket, key)
    return Response(data, media_type=info.content_type or "application/octet-stream")


@router.delete("/buckets/{bucket}/objects/{key:path}", status_code=204, summary="Delete an object")
async def delete_object(
    bucket: BucketName, key: ObjectKey, caller: Caller, jobs: JobsDep
) -> Response:
    import asyncio

    await jobs.check_bucket(bucket, caller)
    await asyncio.to_thread(jobs.storage.delete, bucket, key)
    return Response(status_code=204)
