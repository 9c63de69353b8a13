"""Target ``kserve``: a ``serving.kserve.io/v1beta1`` InferenceService whose predictor is the
exported image as a custom container speaking the Open Inference Protocol (``modelplane run``
serves ``/v2/health/…`` and ``/v2/models/{name}/infer`` besides its native paths).

Serverless: ``minReplicas`` ``scale.min`` (0 scales to zero), ``maxReplicas`` ``scale.max``,
``scaleMetric: concurrency`` with ``scaleTarget`` ``target_concurrency`` (an integer, rounded up);
dedicated: min = max = ``replicas``. The container is KServe's ``kserve-container``.
"""

from __future__ import annotations

import math
from typing import Any

from modelplane.backends.export import image
from modelplane.backends.export.bundle import (
    Bundle,
    ExportOptions,
    dump_yaml,
    header,
    replicas_range,
)
from modelplane.backends.export.kubernetes import container, labels, warn_buckets
from modelplane.spec import DeploymentSpec


def render(spec: DeploymentSpec, options: ExportOptions) -> Bundle:
    bundle = image.render(spec, options)
    low, high = replicas_range(spec)
    meta: dict[str, Any] = {"name": spec.name, "labels": labels(spec)}
    if options.namespace:
        meta["namespace"] = options.namespace
    if spec.description:
        meta["annotations"] = {"modelplane.dev/description": spec.description}
    predictor: dict[str, Any] = {"minReplicas": low, "maxReplicas": high}
    if spec.mode == "serverless":
        target = math.ceil(spec.scale.target_concurrency)
        if target != spec.scale.target_concurrency:
            bundle.warnings.append(
                f"scale.target_concurrency {spec.scale.target_concurrency:g}: KServe's "
                f"scaleTarget is an integer; written as {target}"
            )
        predictor["scaleMetric"] = "concurrency"
        predictor["scaleTarget"] = target
        bundle.warnings.append(
            f"scale.idle_timeout {spec.scale.idle_timeout:g}s: an InferenceService has no field "
            "for how long the last replica stays; Knative's cluster-wide "
            "scale-to-zero-pod-retention-period (config-autoscaler) decides"
        )
        if spec.scale.warm_template:
            bundle.warnings.append(
                "scale.warm_template: KServe starts every replica from a fresh container, so a "
                "cold start from zero pays the model's import and load time"
            )
    if options.facts.loader == "deepaas":
        bundle.warnings.append(
            "DEEPaaS module: GET /v2/models/{name} answers DEEPaaS's metadata, not the Open "
            "Inference Protocol's; infer, ready and health follow the protocol"
        )
    predictor["containers"] = [
        container(spec, options, bundle, name="kserve-container", port_name="http1", serving=True)
    ]
    isvc: dict[str, Any] = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": meta,
        "spec": {"predictor": predictor},
    }
    warn_buckets(spec, bundle, "KServe")
    bundle.files["kserve.yaml"] = header(spec, "kserve") + dump_yaml([isvc])
    return bundle
