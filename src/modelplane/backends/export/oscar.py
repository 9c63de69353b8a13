"""Target ``oscar``: an FDL file for a real OSCAR cluster, which ``modelplane import-fdl`` reads
back into the same deployment.

The service runs the exported image with a script (OSCAR's way: the supervisor runs it once per
input file with ``INPUT_FILE_PATH`` and ``TMP_OUTPUT_DIR``). For an OSCAR script service that is
the model's own script; for any other model a two-line script that runs one prediction with
:mod:`modelplane.backends.export.oneshot`. Resources are ``cpu``/``memory``/``enable_gpu``, the
scale bounds ``synchronous.min_scale/max_scale``, the buckets ``input``/``output`` paths on the
cluster's MinIO. The ``model`` field (a modelplane extension an OSCAR cluster ignores) and
the description annotation keep what modelplane needs to give back the same deployment.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from modelplane.backends.export import image
from modelplane.backends.export.bundle import (
    MODEL_DIR,
    Bundle,
    ExportOptions,
    header,
    image_ref,
    k8s_memory,
    replicas_range,
)
from modelplane.errors import InvalidInput
from modelplane.oscar.fdl import DEFAULT_PROVIDER, DESCRIPTION_ANNOTATION
from modelplane.spec import DeploymentSpec
from modelplane.spec.deployment import Scale
from modelplane.spec.paths import JobFiles, StoragePath

CLUSTER_ID = "oscar-cluster"
SCRIPT = "script.sh"
FDL = "fdl.yaml"


def oneshot_script(spec: DeploymentSpec, options: ExportOptions) -> str:
    args = [MODEL_DIR, '"$INPUT_FILE_PATH"', '"$TMP_OUTPUT_DIR"', "--loader", options.facts.loader]
    if spec.model.entrypoint:
        args += ["--entrypoint", spec.model.entrypoint]
    return (
        "#!/bin/sh\n"
        + header(spec, "oscar")
        + "# OSCAR runs this once per input file, inside the image.\n"
        + "exec python -m modelplane.backends.export.oneshot "
        + " ".join(args)
        + "\n"
    )


def _lost(spec: DeploymentSpec, bundle: Bundle) -> None:
    defaults = Scale()
    high = replicas_range(spec)[1]
    if spec.mode == "dedicated":
        bundle.warnings.append(
            f"mode dedicated ({spec.scale.replicas} replicas): an OSCAR service is serverless; "
            f"written as min_scale = max_scale = {high}, and import-fdl gives back a serverless "
            "deployment"
        )
    for field in ("target_concurrency", "idle_timeout", "warm_template"):
        if spec.mode == "serverless" and getattr(spec.scale, field) != getattr(defaults, field):
            bundle.warnings.append(
                f"scale.{field} {getattr(spec.scale, field)}: OSCAR has no such setting; the "
                "cluster's own autoscaling applies (import-fdl gives back the default)"
            )
    if spec.resources.gpu > 1:
        bundle.warnings.append(
            f"resources.gpu {spec.resources.gpu}: OSCAR's enable_gpu asks for one GPU"
        )
    if not spec.input:
        bundle.warnings.append(
            f"no buckets: an OSCAR service always has an input and an output; the FDL names "
            f"{spec.name}-in and {spec.name}-out"
        )
    elif spec.files is None:
        bundle.warnings.append(
            f"buckets {spec.input} -> {spec.output}: OSCAR keeps a job's files under their own "
            "names (not one result at <input key>.<ext>); import-fdl gives back these buckets "
            "as storage paths (files)"
        )


def service(spec: DeploymentSpec, options: ExportOptions, bundle: Bundle) -> dict[str, Any]:
    low, high = replicas_range(spec)
    files = job_files(spec)
    model: dict[str, Any] = spec.model.model_dump(mode="json", exclude_none=True)
    out: dict[str, Any] = {
        "name": spec.name,
        "image": image_ref(spec, options, bundle),
        "cpu": f"{spec.resources.cpu:g}",
        "memory": k8s_memory(spec.resources.memory),
        "enable_gpu": spec.resources.gpu > 0,
        "log_level": "INFO",
        "script": SCRIPT,
        "synchronous": {"min_scale": low, "max_scale": high},
        "input": [storage_io(files.input)],
        "output": [storage_io(out) for out in files.outputs],
    }
    if spec.env:
        out["environment"] = {"variables": dict(sorted(spec.env.items()))}
    out["model"] = model
    # An FDL has no description; even an empty one is kept, or import-fdl would make one up.
    out["annotations"] = {DESCRIPTION_ANNOTATION: spec.description}
    return out


def job_files(spec: DeploymentSpec) -> JobFiles:
    """The spec's storage paths; bucket-to-bucket (or none) as whole-bucket paths."""
    if spec.files is not None:
        return spec.files
    try:
        return JobFiles(
            input=StoragePath(bucket=spec.input or f"{spec.name}-in"),
            outputs=(StoragePath(bucket=spec.output or f"{spec.name}-out"),),
        )
    except ValidationError as exc:  # a long name makes a default bucket name too long
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise InvalidInput(
            f"deployment {spec.name!r} has no input/output buckets and its default ones are "
            f"not valid: {message}",
            hint="give the deployment input and output buckets",
        ) from None


def storage_io(path: StoragePath) -> dict[str, Any]:
    io: dict[str, Any] = {"storage_provider": DEFAULT_PROVIDER, "path": str(path)}
    if path.prefix:
        io["prefix"] = list(path.prefix)
    if path.suffix:
        io["suffix"] = list(path.suffix)
    return io


def render(spec: DeploymentSpec, options: ExportOptions) -> Bundle:
    bundle = image.render(spec, options)
    _lost(spec, bundle)
    doc = {"functions": {"oscar": [{CLUSTER_ID: service(spec, options, bundle)}]}}
    bundle.files[FDL] = header(spec, "oscar") + yaml.safe_dump(doc, sort_keys=False)
    script = options.facts.script
    bundle.files[SCRIPT] = script if script is not None else oneshot_script(spec, options)
    return bundle
