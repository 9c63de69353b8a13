"""``POST /api/v1/advise``: decode, gather the costs, call the advisor, encode."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from modelplane.advisor import advise
from modelplane.advisor.measure import from_history
from modelplane.advisor.request import AdviseRequest
from modelplane.core.auth import current_principal
from modelplane.core.deployments import Deployments
from modelplane.core.probing import probe_folder
from modelplane.errors import Conflict
from modelplane.security import Principal
from modelplane.spec import DeploymentSpec, Mode, ModelRef, Resources

router = APIRouter(tags=["advisor"])
Caller = Annotated[Principal, Depends(current_principal)]


@router.post(
    "/advise",
    summary="Recommend how to serve a model for the traffic you expect",
    description=(
        "The model's costs come from a deployment's recorded history (`deployment`), from a "
        "probe of a model folder the platform may read (`model`: deployed serverless at zero as "
        "you, with the same checks and quota as a deployment, two cold starts and ten "
        "predictions timed, then removed; `sample` is its input) or are given (`costs`). Every "
        "option that applies is simulated with the platform's own "
        "autoscaler and placement; the answer names the recommended one and why, and for each "
        "option its p50/p99 latency, cold-start share, replica- and GPU-hours per day, a spec "
        "to deploy it and the figures over time."
    ),
    responses={400: {}, 403: {}, 404: {}, 409: {}, 422: {}, 503: {}},
)
async def advise_route(body: AdviseRequest, caller: Caller, request: Request) -> dict[str, Any]:
    deps = request.app.state.deps
    if body.deployment is not None:
        view = await Deployments(deps).get(body.deployment, caller)  # 404 unless yours
        costs = from_history(view, deps.dataplane.service_times(body.deployment))
        if costs is None:
            raise Conflict(
                f"deployment {body.deployment!r} has no recorded start-up and answers yet",
                hint="send it a few predictions first, or measure the model with "
                "`modelplane advise --model FOLDER`",
            )
        spec = DeploymentSpec.model_validate(view["spec"])
        question = body.question(default_name=spec.name, model=spec.model, resources=spec.resources)
    elif body.model is not None:
        model = body.model
        probed = DeploymentSpec(
            name="advise-probe",
            model=model,
            resources=body.resources or Resources(),
            mode=Mode.serverless,
        )
        # the rules of deploying the folder through the API, before anything starts (create()
        # checks them again, with the quota, for the probe's own deployment)
        service = Deployments(deps)
        service.check_model(probed)
        service.check_upload_owner(probed, caller.user)
        costs = await probe_folder(
            deps, caller, model.path, sample=body.sample, resources=body.resources, model=model
        )
        question = body.question(
            default_name=body.name or _slug(Path(model.path).name),
            model=model,
            resources=body.resources,
        )
    else:
        assert body.costs is not None
        costs = body.costs.costs()
        question = body.question(
            default_name=body.name or "my-model", model=ModelRef(path=body.model_path or ".")
        )
    # CPU-bound for up to a few seconds: off the event loop's thread.
    advice = await asyncio.to_thread(advise, question, costs)
    return advice.to_dict()


def _slug(text: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return slug[:63].strip("-") or "my-model"
