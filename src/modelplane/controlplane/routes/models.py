"""``/api/v1/models``: bring a model folder to the platform (a zip upload) and look at one before
deploying it. The deploy wizard of the dashboard uses these; so can anyone with a token."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from modelplane.controlplane.uploads import unpack_model
from modelplane.core.auth import current_principal
from modelplane.errors import InvalidInput, InvalidSpec
from modelplane.model.loader import PythonLoader, get_loader, read_manifest
from modelplane.security import Principal

router = APIRouter(tags=["models"])
Caller = Annotated[Principal, Depends(current_principal)]

ZIP_TYPES = ("application/zip", "application/x-zip-compressed", "application/octet-stream")


class ModelRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="A model folder on the platform's machine")
    loader: str = "auto"
    entrypoint: str | None = None


@router.post(
    "/models",
    status_code=201,
    summary="Upload a model folder as a zip; answers the folder to deploy from",
    description=(
        "The body is the zip archive itself (`content-type: application/zip`). It is unpacked "
        "into a new folder under the platform's data directory and inspected like "
        "`POST /api/v1/models/inspect`; deploy it with `model.path` set to the `path` answered."
    ),
    responses={400: {}, 413: {}, 415: {}, 422: {}},
    openapi_extra={  # the body is read raw, so FastAPI cannot see it: stated here
        "requestBody": {
            "required": True,
            "description": "a zip archive of a model folder (at most the platform's "
            "max_model_upload bytes unpacked; regular files and folders only, no absolute or "
            "'..' paths)",
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in ZIP_TYPES},
        }
    },
)
async def upload(request: Request, caller: Caller) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ZIP_TYPES:
        raise InvalidInput(
            f"send the zip archive as the body with content-type application/zip, not {ctype!r}"
        )
    data = await request.body()
    settings = request.app.state.deps.settings
    root = Path(settings.uploads_dir) / caller.user
    folder = await asyncio.to_thread(unpack_model, data, root, max_bytes=settings.max_model_upload)
    return await asyncio.to_thread(inspect_folder, str(folder), "auto", None)


@router.post("/models/inspect", summary="What a model folder holds: its loader and metadata")
async def inspect(ref: ModelRef, caller: Caller) -> dict[str, Any]:
    return await asyncio.to_thread(inspect_folder, ref.path, ref.loader, ref.entrypoint)


def inspect_folder(path: str, loader_name: str, entrypoint: str | None) -> dict[str, Any]:
    """The loader that takes ``path``, its cheap checks, and what the manifest says (if any)."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise InvalidSpec(
            f"model.path: {path} is not a folder on the platform's machine",
            hint="give the folder's absolute path, or upload the folder as a zip",
            field="model.path",
        )
    loader = get_loader(loader_name, folder, entrypoint)
    kind = "python" if isinstance(loader, PythonLoader) else type(loader).__module__.split(".")[-1]
    loader.check(folder, entrypoint)
    metadata: dict[str, Any] | None = None
    if isinstance(loader, PythonLoader):
        metadata = read_manifest(folder, entrypoint).metadata.to_dict()
    base = (metadata or {}).get("name") or folder.name
    return {
        "path": str(folder.resolve()),
        "loader": kind,
        "metadata": metadata,
        "suggested_name": _deployment_name(str(base)),
    }


def _deployment_name(text: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return name[:40] or "model"
