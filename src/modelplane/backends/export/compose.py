"""Target ``compose``: ``compose.yaml`` for Docker Compose (the Compose Specification).

The model's service builds the exported image from this folder and runs ``deploy.replicas`` of
it (dedicated: ``replicas``; serverless: ``max(scale.min, 1)``, Compose does not autoscale), with
the image's health check, ``deploy.resources.limits`` for CPU and memory and a device reservation
for GPUs. With buckets, three more services run the asynchronous side: an S3 server (MinIO) with
a volume, a one-shot that creates the two buckets, and the modelplane platform itself (same
image, ``modelplane up --storage s3``) as the job runner: every object uploaded to the input
bucket becomes a job and its result lands in the output bucket.
"""

from __future__ import annotations

from typing import Any

import yaml

from modelplane.backends.export import image
from modelplane.backends.export.bundle import (
    MODEL_DIR,
    PORT,
    Bundle,
    ExportOptions,
    dump_yaml,
    header,
    image_ref,
    replicas_range,
)
from modelplane.spec import DeploymentSpec

S3_IMAGE = "minio/minio:latest"
MC_IMAGE = "minio/mc:latest"
PLATFORM_PORT = 8000
PLATFORM_SPECS = "platform"
"""Folder (in the export) holding the spec the job runner deploys, mounted at /specs."""
_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "${S3_ACCESS_KEY:-modelplane}",
    "AWS_SECRET_ACCESS_KEY": "${S3_SECRET_KEY:-change-me-please}",
}


def memory(size: int) -> str:
    """A Compose byte value: ``512m`` when whole mebibytes, else bytes (``b``)."""
    mib = 1024**2
    return f"{size // mib}m" if size % mib == 0 else f"{size}b"


def literal_env(spec: DeploymentSpec) -> dict[str, str]:
    """The spec's variables with ``$`` doubled: Compose would interpolate ``${…}`` otherwise."""
    return {key: value.replace("$", "$$") for key, value in sorted(spec.env.items())}


def healthcheck(probe: str = image.HEALTHCHECK) -> dict[str, Any]:
    return {
        "test": ["CMD", "python", "-c", probe],
        "interval": "10s",
        "timeout": "5s",
        "retries": 3,
        "start_period": "60s",
    }


def deploy(spec: DeploymentSpec, replicas: int) -> dict[str, Any]:
    resources: dict[str, Any] = {
        "limits": {"cpus": f"{spec.resources.cpu:g}", "memory": memory(spec.resources.memory)}
    }
    if spec.resources.gpu:
        resources["reservations"] = {
            "devices": [{"driver": "nvidia", "count": spec.resources.gpu, "capabilities": ["gpu"]}]
        }
    return {"replicas": replicas, "resources": resources}


def render(spec: DeploymentSpec, options: ExportOptions) -> Bundle:
    bundle = image.render(spec, options)
    low, high = replicas_range(spec)
    replicas = max(low, 1)
    if spec.mode == "serverless":
        bundle.warnings.append(
            f"serverless scale {low}..{high}: Compose runs a fixed number of replicas "
            f"({replicas}); it neither autoscales nor scales to zero"
        )
    model: dict[str, Any] = {
        "build": {"context": ".", "dockerfile": "Dockerfile"},
        "image": image_ref(spec, options, bundle),
    }
    if replicas == 1:
        model["ports"] = [f"{PORT}:{PORT}"]
    else:
        model["ports"] = [str(PORT)]
        bundle.warnings.append(
            f"{replicas} replicas: Compose has no load balancer in front of them; each gets its "
            f"own host port (`docker compose port --index N {spec.name} {PORT}`)"
        )
    if spec.env:
        model["environment"] = literal_env(spec)
    model["healthcheck"] = healthcheck()
    model["deploy"] = deploy(spec, replicas)
    services: dict[str, Any] = {spec.name: model}
    volumes: dict[str, Any] = {}
    if spec.input and spec.output:
        _jobs(spec, options, bundle, services, volumes)
    doc: dict[str, Any] = {"name": spec.name, "services": services}
    if volumes:
        doc["volumes"] = volumes
    bundle.files["compose.yaml"] = header(spec, "compose") + dump_yaml([doc])
    return bundle


def _jobs(
    spec: DeploymentSpec,
    options: ExportOptions,
    bundle: Bundle,
    services: dict[str, Any],
    volumes: dict[str, Any],
) -> None:
    assert spec.input and spec.output
    services["s3"] = {
        "image": S3_IMAGE,
        "command": ["server", "/data"],
        "environment": {
            "MINIO_ROOT_USER": _CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "MINIO_ROOT_PASSWORD": _CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        },
        "ports": ["9000:9000"],
        "volumes": ["s3-data:/data"],
        "healthcheck": {
            "test": ["CMD", "mc", "ready", "local"],
            "interval": "5s",
            "timeout": "5s",
            "retries": 10,
        },
    }
    services["buckets"] = {
        "image": MC_IMAGE,
        "depends_on": {"s3": {"condition": "service_healthy"}},
        "environment": dict(_CREDENTIALS),
        "entrypoint": [
            "sh",
            "-c",
            'mc alias set s3 http://s3:9000 "$$AWS_ACCESS_KEY_ID" "$$AWS_SECRET_ACCESS_KEY" '
            f"&& mc mb --ignore-existing s3/{spec.input} s3/{spec.output}",
        ],
        "restart": "no",
    }
    env = {**literal_env(spec), **_CREDENTIALS}
    services["jobs"] = {
        "image": image_ref(spec, options, bundle),
        "depends_on": {"buckets": {"condition": "service_completed_successfully"}},
        "command": [
            "modelplane",
            "up",
            "--host",
            "0.0.0.0",
            "--port",
            str(PLATFORM_PORT),
            "--storage",
            "s3",
            "--s3-endpoint",
            "http://s3:9000",
            "--examples",
            "/specs",
        ],
        "environment": env,
        "ports": [f"{PLATFORM_PORT}:{PLATFORM_PORT}"],
        "volumes": [f"./{PLATFORM_SPECS}:/specs:ro", "jobs-data:/home/model/.modelplane"],
        "healthcheck": healthcheck(
            image.HEALTHCHECK.replace(f":{PORT}/health", f":{PLATFORM_PORT}/api/v1/health")
        ),
        "deploy": deploy(spec, 1),
    }
    volumes["s3-data"] = {}
    volumes["jobs-data"] = {}
    platform = spec.model_copy(update={"model": spec.model.model_copy(update={"path": MODEL_DIR})})
    bundle.files[f"{PLATFORM_SPECS}/{spec.name}/deployment.yaml"] = header(
        spec, "compose"
    ) + yaml.safe_dump(platform.model_dump(mode="json"), sort_keys=False)
    bundle.warnings.append(
        "S3 credentials default to placeholders: set S3_ACCESS_KEY and S3_SECRET_KEY in the "
        "environment (or an .env file) before `docker compose up`"
    )
