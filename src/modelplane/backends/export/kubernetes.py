"""Target ``kubernetes``: a Deployment, a Service and, for a serverless spec, a
HorizontalPodAutoscaler (``autoscaling/v2``).

Plain Kubernetes cannot scale to zero and its HPA sees CPU, not in-flight requests: a serverless
spec gets an HPA between ``max(min, 1)`` and ``max`` on CPU utilisation, and both limits are
warnings. The container (shared with the Knative and KServe targets) runs the exported image with
requests equal to limits, ``nvidia.com/gpu`` for GPUs, and HTTP probes on ``/health``.
"""

from __future__ import annotations

from typing import Any

from modelplane.backends.export import image
from modelplane.backends.export.bundle import (
    HEALTH_PATH,
    PORT,
    Bundle,
    ExportOptions,
    dump_yaml,
    header,
    image_ref,
    k8s_cpu,
    k8s_memory,
    replicas_range,
    run_command,
)
from modelplane.spec import DeploymentSpec

GPU_RESOURCE = "nvidia.com/gpu"
HPA_CPU_UTILIZATION = 80
HPA_MAX_WINDOW = 3600
"""The largest scale-down stabilisation window autoscaling/v2 accepts (one hour)."""
STARTUP_SECONDS = 600
"""How long a replica may take to load its model before Kubernetes restarts it."""


def labels(spec: DeploymentSpec) -> dict[str, str]:
    return {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/managed-by": "modelplane"}


def resources(spec: DeploymentSpec) -> dict[str, Any]:
    amounts: dict[str, Any] = {
        "cpu": k8s_cpu(spec.resources.cpu),
        "memory": k8s_memory(spec.resources.memory),
    }
    limits = dict(amounts)
    if spec.resources.gpu:
        # Extended resources are asked for in limits (requests, if given, must be equal).
        limits[GPU_RESOURCE] = str(spec.resources.gpu)
    return {"requests": amounts, "limits": limits}


def env(spec: DeploymentSpec) -> list[dict[str, str]]:
    # Kubernetes expands $(NAME) in values; $$( keeps it literal.
    return [
        {"name": key, "value": value.replace("$(", "$$(")}
        for key, value in sorted(spec.env.items())
    ]


def container(
    spec: DeploymentSpec,
    options: ExportOptions,
    bundle: Bundle,
    *,
    name: str,
    port_name: str,
    serving: bool = False,
) -> dict[str, Any]:
    """The model's container. ``serving`` (Knative, KServe): the probes name the serving port by
    number (a probe there may only target that port) and Knative's own startup handling replaces
    the startup and liveness probes."""
    get: dict[str, Any] = {"path": HEALTH_PATH, "port": PORT if serving else port_name}
    body: dict[str, Any] = {
        "name": name,
        "image": image_ref(spec, options, bundle),
        "command": run_command(spec, options.facts),
        "ports": [{"name": port_name, "containerPort": PORT, "protocol": "TCP"}],
    }
    if spec.env:
        body["env"] = env(spec)
    body["resources"] = resources(spec)
    body["readinessProbe"] = {"httpGet": dict(get), "periodSeconds": 5, "timeoutSeconds": 3}
    if not serving:
        body["startupProbe"] = {
            "httpGet": dict(get),
            "periodSeconds": 5,
            "failureThreshold": STARTUP_SECONDS // 5,
        }
        body["livenessProbe"] = {"httpGet": dict(get), "periodSeconds": 15, "timeoutSeconds": 5}
    return body


def warn_buckets(spec: DeploymentSpec, bundle: Bundle, target: str) -> None:
    if spec.input:
        bundle.warnings.append(
            f"input/output buckets ({spec.input} -> {spec.output}): {target} has no bucket "
            "trigger; the manifests serve synchronous predictions only (use --target compose "
            "for the job runner, or --target oscar)"
        )


def warn_warm_template(spec: DeploymentSpec, bundle: Bundle, target: str) -> None:
    if spec.mode == "serverless" and spec.scale.warm_template:
        bundle.warnings.append(
            f"scale.warm_template: {target} starts every replica from a fresh container, so a "
            "cold start pays the model's import and load time (no forked warm template)"
        )


def render(spec: DeploymentSpec, options: ExportOptions) -> Bundle:
    bundle = image.render(spec, options)
    low, high = replicas_range(spec)
    meta: dict[str, Any] = {"name": spec.name, "labels": labels(spec)}
    if options.namespace:
        meta["namespace"] = options.namespace
    select = {"app.kubernetes.io/name": spec.name}
    pod = {
        "metadata": {"labels": labels(spec)},
        "spec": {
            "containers": [container(spec, options, bundle, name="model", port_name="http")],
        },
    }
    if spec.description:
        meta["annotations"] = {"modelplane.dev/description": spec.description}
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": max(low, 1),
            "selector": {"matchLabels": select},
            "template": pod,
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "selector": select,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    docs: list[dict[str, Any]] = [deployment, service]
    if spec.mode == "serverless":
        if low == 0:
            bundle.warnings.append(
                "scale.min 0: plain Kubernetes cannot scale to zero; the HorizontalPodAutoscaler "
                "keeps at least 1 replica (use --target knative or kserve for scale to zero)"
            )
        bundle.warnings.append(
            f"scale.target_concurrency {spec.scale.target_concurrency:g}: the HPA scales on CPU "
            f"({HPA_CPU_UTILIZATION}% average utilisation of the request), not on in-flight "
            "requests (Knative and KServe scale on concurrency)"
        )
        window = min(round(spec.scale.idle_timeout), HPA_MAX_WINDOW)
        bundle.warnings.append(
            f"scale.idle_timeout {spec.scale.idle_timeout:g}s: the HPA's scale-down "
            f"stabilisation window ({window} s, at most {HPA_MAX_WINDOW}) decides when replicas "
            "go, on CPU rather than on idleness"
        )
        docs.append(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": meta,
                "spec": {
                    "scaleTargetRef": {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": spec.name,
                    },
                    "minReplicas": max(low, 1),
                    "maxReplicas": high,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {
                                    "type": "Utilization",
                                    "averageUtilization": HPA_CPU_UTILIZATION,
                                },
                            },
                        }
                    ],
                    "behavior": {
                        "scaleDown": {
                            "stabilizationWindowSeconds": min(round(spec.scale.idle_timeout), 3600)
                        }
                    },
                },
            }
        )
        warn_warm_template(spec, bundle, "Kubernetes")
    warn_buckets(spec, bundle, "Kubernetes")
    bundle.files["kubernetes.yaml"] = header(spec, "kubernetes") + dump_yaml(docs)
    return bundle
