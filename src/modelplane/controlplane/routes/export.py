"""``GET /api/v1/deployments/{name}/export?target=…``: a deployment as a zip of ready-to-apply
files, and ``GET /api/v1/export/targets``: what each target writes."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from modelplane.backends.export import TARGETS, ExportOptions, render, target
from modelplane.backends.export.files import inspect_model, zip_bundle
from modelplane.controlplane.routes.params import DeploymentName
from modelplane.core.auth import current_principal
from modelplane.core.deployments import Deployments
from modelplane.errors import InvalidInput
from modelplane.security import Principal
from modelplane.spec import DeploymentSpec

router = APIRouter(tags=["export"])
Caller = Annotated[Principal, Depends(current_principal)]
WARNINGS_HEADER = "x-modelplane-export-warnings"
"""The warnings (also in the zip's README.md), as a JSON list of strings (ASCII-escaped)."""


@router.get("/export/targets", summary="The export targets and what each writes")
async def targets(caller: Caller) -> list[dict[str, str]]:
    return [{"name": t.name, "summary": t.summary} for t in TARGETS.values()]


@router.get(
    "/deployments/{name}/export",
    summary="Export a deployment as ready-to-apply files (a zip)",
    description=(
        "Renders the deployment for `target` (image, compose, kubernetes, knative, kserve, nomad, "
        "oscar): a folder with the documents, a Dockerfile, the model folder and a README.md "
        f"that lists what the target cannot express (also in the `{WARNINGS_HEADER}` header)."
    ),
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}, 400: {}, 404: {}, 413: {}, 422: {}},
    # `target` is checked below, with a message that lists the targets; the document says it
    # is required and which values it takes.
    openapi_extra={
        "parameters": [
            {
                "name": "target",
                "in": "query",
                "required": True,
                "description": "an export target (see /export/targets)",
                "schema": {"type": "string", "enum": list(TARGETS)},
            }
        ]
    },
)
async def export(
    name: DeploymentName,
    request: Request,
    caller: Caller,
    target_name: Annotated[
        str | None,
        Query(alias="target", description="an export target", include_in_schema=False),
    ] = None,
    image: Annotated[
        str | None,
        Query(max_length=255, description="REGISTRY/NAME:TAG the manifests run"),
    ] = None,
) -> Response:
    row = await Deployments(request.app.state.deps).get_row(name, caller)  # 404 if not yours
    if target_name is None:
        raise InvalidInput(
            f"give the target: ?target=one of {', '.join(TARGETS)}",
            hint="GET /api/v1/export/targets",
        )
    target(target_name)  # 400 for an unknown target
    spec = DeploymentSpec.parse(row.spec)
    body, warnings = await asyncio.to_thread(_render_zip, spec, target_name, image)
    headers: dict[str, Any] = {
        "content-disposition": f'attachment; filename="{name}-{target_name}.zip"',
        WARNINGS_HEADER: json.dumps(warnings, ensure_ascii=True),
    }
    return Response(body, media_type="application/zip", headers=headers)


def _render_zip(
    spec: DeploymentSpec, target_name: str, image: str | None
) -> tuple[bytes, list[str]]:
    options = ExportOptions(image=image, facts=inspect_model(spec))
    bundle = render(spec, target_name, options)
    return zip_bundle(bundle, f"{spec.name}-{target_name}"), bundle.warnings
