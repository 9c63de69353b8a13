"""``/api/v1/users``, ``/api/v1/tokens``, deployment inference tokens and ``/api/v1/resources``."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from modelplane.controlplane.routes.params import (
    USER_PATTERN,
    USER_SCHEMA,
    DeploymentName,
    UserName,
)
from modelplane.core.accounts import Accounts
from modelplane.core.auth import current_principal
from modelplane.core.deployments import Deployments
from modelplane.security import Principal
from modelplane.spec import parse_memory
from modelplane.spec.deployment import MAX_MEMORY, MEMORY_SCHEMA

router = APIRouter(tags=["users"])
Caller = Annotated[Principal, Depends(current_principal)]

USER_RE = re.compile(USER_PATTERN)


async def _accounts(request: Request) -> Accounts:
    return Accounts(request.app.state.deps)


Service = Annotated[Accounts, Depends(_accounts)]


class QuotaBody(BaseModel):
    """Limits on what a user's replicas hold at once; a missing field is unlimited."""

    model_config = ConfigDict(extra="forbid")
    cpu: Annotated[float | None, Field(ge=0, description="cores")] = None
    memory: Annotated[
        int | None,
        Field(ge=0, le=MAX_MEMORY, description="bytes; accepts 4Gi"),
        WithJsonSchema({"anyOf": [MEMORY_SCHEMA, {"type": "null"}]}),
    ] = None
    gpu: Annotated[int | None, Field(ge=0)] = None
    deployments: Annotated[int | None, Field(ge=0)] = None

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, v: Any) -> Any:
        return parse_memory(v) if isinstance(v, str | dict | list) else v

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(
        description="lowercase letters, digits, '-', '_', '.'; at most 64",
        json_schema_extra=USER_SCHEMA,
    )
    admin: bool = False
    quotas: QuotaBody = QuotaBody()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not USER_RE.match(v):
            raise ValueError(
                "user names are 1-64 lowercase letters, digits, '-', '_' or '.', starting and "
                "ending with a letter or digit"
            )
        return v


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str | None = Field(default=None, description="whose token (admins only; default: you)")
    name: str = Field(default="", max_length=128)
    expires_in_days: Annotated[float | None, Field(gt=0, le=36_500)] = None


class NewInferenceToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="", max_length=128)
    expires_in_days: Annotated[float | None, Field(gt=0, le=36_500)] = None


# -- users -----------------------------------------------------------------------------------------
@router.get("/users", summary="Users (admins: all; others: themselves)")
async def list_users(caller: Caller, svc: Service) -> list[dict[str, Any]]:
    return await svc.list_users(caller)


@router.post("/users", status_code=201, summary="Add a user (admins only)")
async def create_user(body: NewUser, caller: Caller, svc: Service) -> dict[str, Any]:
    return await svc.create_user(body.name, body.admin, body.quotas.as_dict(), caller)


@router.get("/users/{name}", summary="A user, their quotas and what they hold now")
async def get_user(name: UserName, caller: Caller, svc: Service) -> dict[str, Any]:
    return await svc.get_user(name, caller)


@router.put("/users/{name}/quotas", summary="Replace a user's quotas (admins only)")
async def set_quotas(
    name: UserName, body: QuotaBody, caller: Caller, svc: Service
) -> dict[str, Any]:
    return await svc.set_quotas(name, body.as_dict(), caller)


@router.delete("/users/{name}", status_code=204, summary="Remove a user and their tokens")
async def delete_user(name: UserName, caller: Caller, svc: Service) -> Response:
    await svc.delete_user(name, caller)
    return Response(status_code=204)


# -- tokens ----------------------------------------------------------------------------------------
@router.get("/tokens", summary="Your live tokens (admins: everyone's, or one user's)")
async def list_tokens(
    caller: Caller, svc: Service, user: Annotated[str | None, Query()] = None
) -> list[dict[str, Any]]:
    return await svc.list_tokens(caller, user=user)


@router.post("/tokens", status_code=201, summary="Create an API token (shown once)")
async def create_token(body: NewToken, caller: Caller, svc: Service) -> dict[str, Any]:
    return await svc.create_token(
        caller, user=body.user, name=body.name, expires_in_days=body.expires_in_days
    )


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a token, at once")
async def revoke_token(token_id: int, caller: Caller, svc: Service) -> Response:
    await svc.revoke_token(token_id, caller)
    return Response(status_code=204)


# -- inference tokens of one deployment ------------------------------------------------------------
@router.post(
    "/deployments/{name}/tokens",
    status_code=201,
    summary="Create an inference token: predictions with this deployment only",
)
async def create_inference_token(
    name: DeploymentName, body: NewInferenceToken, caller: Caller, svc: Service
) -> dict[str, Any]:
    row = await Deployments(svc.deps).get_row(name, caller)
    return await svc.create_token(
        caller,
        user=row.owner,
        name=body.name,
        expires_in_days=body.expires_in_days,
        deployment=name,
    )


@router.get("/deployments/{name}/tokens", summary="A deployment's live inference tokens")
async def list_inference_tokens(
    name: DeploymentName, caller: Caller, svc: Service
) -> list[dict[str, Any]]:
    row = await Deployments(svc.deps).get_row(name, caller)
    return await svc.list_tokens(caller, user=row.owner, deployment=name)


# -- the node --------------------------------------------------------------------------------------
@router.get("/resources", summary="The node's CPU, memory and GPUs, and what is reserved")
async def resources(caller: Caller, svc: Service) -> dict[str, Any]:
    return await svc.resources(caller)
