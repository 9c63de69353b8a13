"""The OSCAR REST API at the platform's root, as a FastAPI router: what ``oscar-python`` calls.

Routes decode, call :mod:`modelplane.oscar.services`, :mod:`~modelplane.oscar.invoke` or
:mod:`~modelplane.oscar.joblog`, and encode. Errors keep modelplane's JSON shape and statuses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse

from modelplane import __version__
from modelplane.core.deps import Deps
from modelplane.errors import InvalidInput
from modelplane.oscar import invoke, joblog, s3api
from modelplane.oscar.auth import (
    basic_credentials,
    check_invocable,
    invoker,
    run_invoker,
    system_principal,
)
from modelplane.oscar.buckets import (
    OPERATIONS,
    PRESIGN_MAX,
    PRESIGN_MIN,
    VISIBILITIES,
    Buckets,
)
from modelplane.oscar.records import Record
from modelplane.oscar.services import OscarServices
from modelplane.oscar.status import cluster_status
from modelplane.oscar.volumes import Volumes
from modelplane.security import Principal
from modelplane.settings import Settings
from modelplane.spec.deployment import MEMORY_SCHEMA, NAME_SCHEMA
from modelplane.storage.keys import BUCKET_SCHEMA, KEY_SCHEMA

router = APIRouter(tags=["OSCAR"])
router.include_router(s3api.router)
Caller = Annotated[Principal, Depends(system_principal)]
Invoker = Annotated[Principal, Depends(invoker)]
RunInvoker = Annotated[Principal, Depends(run_invoker)]
PLATFORM = "modelplane"

# What the routes below that read their JSON body themselves (to keep OSCAR's own messages)
# accept, as the OpenAPI document states it; the checks are in buckets.py, volumes.py and fdl.py.
ServiceName = Annotated[str, Path(json_schema_extra=NAME_SCHEMA)]
BucketName = Annotated[str, Path(json_schema_extra=BUCKET_SCHEMA)]


def _json_request(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_BUCKET_BODY = _json_request(
    {
        "type": "object",
        "required": ["bucket_name"],
        "additionalProperties": False,
        "properties": {
            "bucket_name": {"type": "string", **BUCKET_SCHEMA},
            "visibility": {"type": "string", "enum": list(VISIBILITIES)},
            "allowed_users": {
                "type": "array",
                "maxItems": 0,
                "items": {"type": "string"},
                "description": "users of this platform (the document allows none: it cannot "
                "name who exists)",
            },
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
)
_PRESIGN_BODY = _json_request(
    {
        "type": "object",
        "required": ["object_key", "operation"],
        "additionalProperties": False,
        "properties": {
            "object_key": {"type": "string", **KEY_SCHEMA},
            "operation": {"type": "string", "enum": list(OPERATIONS)},
            "expires_in": {"type": "integer", "minimum": PRESIGN_MIN, "maximum": PRESIGN_MAX},
            "content_type": {"type": "string", "maxLength": 255},
        },
    }
)
_VOLUME_BODY = _json_request(
    {
        "type": "object",
        "required": ["name", "size"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", **NAME_SCHEMA},
            "size": {**MEMORY_SCHEMA["anyOf"][1], "description": "a size such as 1Gi"},
        },
    }
)
_SERVICE_BODY = _json_request(
    {
        "type": "object",
        "required": ["name", "script"],
        "additionalProperties": False,
        "description": "an OSCAR service definition (see OSCAR's FDL); `script` (the shell "
        "script's text) or modelplane's `model` (a model folder on the platform's machine)",
        "properties": {
            # its default buckets are <name>-in and <name>-out, bucket names of at most 63
            "name": {"type": "string", **NAME_SCHEMA, "maxLength": 59},
            "script": {"type": "string"},
            "image": {"type": "string"},
            "memory": {**MEMORY_SCHEMA["anyOf"][1]},
            "cpu": {"type": "string", "pattern": r"^(?=[^1-9]*[1-9])[0-9]+(\.[0-9]+)?$"},
            "enable_gpu": {"type": "boolean"},
            "log_level": {"type": "string"},
            "visibility": {"type": "string", "enum": list(VISIBILITIES)},
        },
    }
)


def storage_info(settings: Settings, environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The platform's buckets as OSCAR's ``minio_provider`` (read once, at start-up)."""
    if settings.storage != "s3":
        return {}
    endpoint = settings.s3_endpoint or ""
    return {
        "endpoint": endpoint,
        "verify": True,
        "access_key": environ.get("AWS_ACCESS_KEY_ID", ""),
        "secret_key": environ.get("AWS_SECRET_ACCESS_KEY", ""),
        "region": settings.s3_region or environ.get("AWS_DEFAULT_REGION", ""),
    }


def _deps(request: Request) -> Deps:
    return request.app.state.deps


def _services(request: Request) -> OscarServices:
    return OscarServices(_deps(request))


Services = Annotated[OscarServices, Depends(_services)]


async def _json_body(request: Request, what: str) -> Any:
    import orjson

    body = await request.body()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the {what} is not valid JSON: {exc}") from None


# -- cluster -------------------------------------------------------------------------------------
@router.get("/health", response_class=PlainTextResponse, summary="OSCAR: liveness (no token)")
async def health() -> str:
    return "Ok"


@router.get("/system/info", summary="OSCAR: version and backend")
async def info(caller: Caller) -> dict[str, Any]:
    return {
        "version": __version__,
        "git_commit": "",
        "platform": PLATFORM,
        "kubernetes_version": "",
        "serverless_backend": {"name": PLATFORM, "version": __version__},
    }


def caller_token(request: Request) -> str:
    """The token the caller authenticated with (a Basic password or a bearer token)."""
    header = request.headers.get("authorization", "")
    creds = basic_credentials(header)
    if creds is not None:
        return creds[1]
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


@router.get("/system/config", summary="OSCAR: configuration and the buckets' S3 endpoint")
@router.get("/system/config/", include_in_schema=False)
async def config(request: Request, caller: Caller) -> dict[str, Any]:
    deps = _deps(request)
    provider = dict(getattr(request.app.state, "oscar_storage", None) or {})
    if provider:
        if not caller.admin:  # the platform's own S3 keys are for admins only
            provider["access_key"] = provider["secret_key"] = ""
    else:
        # Local buckets: the platform's own S3 endpoint, the caller's token as the access key.
        provider = {
            "endpoint": str(request.base_url).rstrip("/") + s3api.router.prefix,
            "verify": False,
            "access_key": caller_token(request) or caller.user,
            "secret_key": s3api.SECRET_KEY,
            "region": "us-east-1",
        }
    book = deps.reconciler.reservations
    gpus = bool(book and book.inventory.gpus)
    return {
        "name": PLATFORM,
        "namespace": "",
        "services_namespace": "",
        "gpu_available": gpus,
        "interLink_available": False,
        "serverless_backend": PLATFORM,
        "yunikorn_enable": False,
        "oidc_groups": [],
        "minio_provider": provider,
    }


# -- services ------------------------------------------------------------------------------------
@router.get("/system/services", summary="OSCAR: the services you may see")
async def list_services(caller: Caller, svc: Services) -> list[dict[str, Any]]:
    return await svc.list(caller)


@router.post(
    "/system/services",
    status_code=201,
    summary="OSCAR: create a service",
    openapi_extra=_SERVICE_BODY,
)
async def create_service(request: Request, caller: Caller, svc: Services) -> dict[str, Any]:
    return await svc.create(await _json_body(request, "service definition"), caller)


@router.put(
    "/system/services",
    status_code=204,
    summary="OSCAR: update the service in the body",
    openapi_extra=_SERVICE_BODY,
)
async def update_service(request: Request, caller: Caller, svc: Services) -> Response:
    await svc.update(await _json_body(request, "service definition"), caller)
    return Response(status_code=204)


@router.put("/system/services/{name}", status_code=204, include_in_schema=False)
async def update_named(name: str, request: Request, caller: Caller, svc: Services) -> Response:
    await svc.update(await _json_body(request, "service definition"), caller, name)
    return Response(status_code=204)


@router.get("/system/services/{name}", summary="OSCAR: one service, with its token")
async def get_service(name: ServiceName, caller: Caller, svc: Services) -> dict[str, Any]:
    return await svc.get(name, caller)


@router.delete("/system/services/{name}", status_code=204, summary="OSCAR: remove a service")
async def delete_service(name: ServiceName, caller: Caller, svc: Services) -> Response:
    await svc.delete(name, caller)
    return Response(status_code=204)


# -- invocations ---------------------------------------------------------------------------------
async def _invocable(name: str, caller: Principal, svc: OscarServices) -> Record:
    record, owner = await svc.record(name)
    check_invocable(name, caller, owner, record.definition)
    return record


@router.post(
    "/run/{name}",
    summary="OSCAR: run a service synchronously",
    description="The platform's gateway answers this path on its fast path "
    "(modelplane.oscar.front); this route documents it and serves it when the app runs alone.",
)
async def run(name: ServiceName, request: Request, caller: RunInvoker, svc: Services) -> Response:
    record = await _invocable(name, caller, svc)
    answer = await invoke.run(_deps(request), record, await request.body(), caller)
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)


@router.post("/job/{name}", status_code=201, summary="OSCAR: run a service asynchronously")
async def job(
    name: ServiceName, request: Request, caller: Invoker, svc: Services
) -> dict[str, str]:
    record = await _invocable(name, caller, svc)
    job_id = await invoke.submit(_deps(request), record, await request.body())
    return {"jobName": job_id}


# -- jobs and their logs -------------------------------------------------------------------------
@router.get("/system/logs/{name}", summary="OSCAR: a page of a service's jobs")
async def list_jobs(
    name: ServiceName, caller: Caller, svc: Services, page: Annotated[str, Query()] = ""
) -> dict[str, Any]:
    await svc.visible(name, caller)
    return await joblog.list_jobs(svc.deps, name, page)


@router.delete("/system/logs/{name}", status_code=204, summary="OSCAR: remove finished jobs")
async def delete_jobs(
    name: ServiceName,
    caller: Caller,
    svc: Services,
    every: Annotated[bool, Query(alias="all", description="also queued, running, failed")] = False,
) -> Response:
    await svc.visible(name, caller)
    await joblog.remove_jobs(svc.deps, name, every=every)
    return Response(status_code=204)


@router.get(
    "/system/logs/{name}/{job_id}",
    response_class=PlainTextResponse,
    summary="OSCAR: the logs of one job",
)
async def job_logs(name: ServiceName, job_id: str, caller: Caller, svc: Services) -> str:
    await svc.visible(name, caller)
    return await joblog.job_logs(svc.deps, name, job_id, datetime.now(UTC))


@router.delete("/system/logs/{name}/{job_id}", status_code=204, summary="OSCAR: remove a job")
async def delete_job(name: ServiceName, job_id: str, caller: Caller, svc: Services) -> Response:
    await svc.visible(name, caller)
    await joblog.remove_job(svc.deps, name, job_id)
    return Response(status_code=204)


# -- buckets -------------------------------------------------------------------------------------
def _buckets(request: Request) -> Buckets:
    return Buckets(_deps(request))


BucketsDep = Annotated[Buckets, Depends(_buckets)]


@router.get("/system/buckets", summary="OSCAR: the buckets you may use")
async def list_buckets(caller: Caller, buckets: BucketsDep) -> list[dict[str, Any]]:
    return await buckets.list(caller)


@router.post(
    "/system/buckets",
    status_code=201,
    summary="OSCAR: create a bucket",
    openapi_extra=_BUCKET_BODY,
)
async def create_bucket(request: Request, caller: Caller, buckets: BucketsDep) -> Response:
    await buckets.create(await _json_body(request, "bucket definition"), caller)
    return Response(status_code=201)


@router.put(
    "/system/buckets",
    status_code=204,
    summary="OSCAR: change a bucket's visibility",
    openapi_extra=_BUCKET_BODY,
)
async def update_bucket(request: Request, caller: Caller, buckets: BucketsDep) -> Response:
    await buckets.update(await _json_body(request, "bucket definition"), caller)
    return Response(status_code=204)


@router.get("/system/buckets/{name}", summary="OSCAR: a bucket and a page of its objects")
async def get_bucket(
    name: BucketName, caller: Caller, buckets: BucketsDep, page: Annotated[str, Query()] = ""
) -> dict[str, Any]:
    return await buckets.get(name, caller, page)


@router.delete("/system/buckets/{name}", status_code=204, summary="OSCAR: delete a bucket")
async def delete_bucket(name: BucketName, caller: Caller, buckets: BucketsDep) -> Response:
    await buckets.delete(name, caller)
    return Response(status_code=204)


@router.post(
    "/system/buckets/{name}/presign",
    summary="OSCAR: a presigned URL for an object",
    openapi_extra=_PRESIGN_BODY,
)
async def presign(
    name: BucketName, request: Request, caller: Caller, buckets: BucketsDep
) -> dict[str, Any]:
    return await buckets.presign(
        name, await _json_body(request, "presign request"), caller, str(request.base_url)
    )


# -- status --------------------------------------------------------------------------------------
@router.get("/system/status", summary="OSCAR: the platform's resources, services and buckets")
async def status(request: Request, caller: Caller) -> dict[str, Any]:
    return await cluster_status(_deps(request), caller)


# -- volumes -------------------------------------------------------------------------------------
def _volumes(request: Request) -> Volumes:
    return Volumes(_deps(request))


VolumesDep = Annotated[Volumes, Depends(_volumes)]


@router.get("/system/volumes", summary="OSCAR: your managed volumes")
async def list_volumes(caller: Caller, volumes: VolumesDep) -> list[dict[str, Any]]:
    return await volumes.list(caller)


@router.post(
    "/system/volumes",
    status_code=201,
    summary="OSCAR: create a managed volume",
    openapi_extra=_VOLUME_BODY,
)
async def create_volume(request: Request, caller: Caller, volumes: VolumesDep) -> dict[str, Any]:
    return await volumes.create(await _json_body(request, "volume definition"), caller)


@router.get("/system/volumes/{name}", summary="OSCAR: one managed volume")
async def get_volume(name: ServiceName, caller: Caller, volumes: VolumesDep) -> dict[str, Any]:
    return await volumes.get(name, caller)


@router.delete("/system/volumes/{name}", status_code=204, summary="OSCAR: delete a volume")
async def delete_volume(name: ServiceName, caller: Caller, volumes: VolumesDep) -> Response:
    await volumes.delete(name, caller)
    return Response(status_code=204)
