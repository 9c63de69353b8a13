"""Target ``knative``: a ``serving.knative.dev/v1`` Service.

Autoscaling is per revision, as annotations on ``spec.template.metadata``: ``min-scale`` and
``max-scale`` bound the replicas (serverless: ``scale.min``/``scale.max``, so ``min`` 0 scales to
zero; dedicated: both ``replicas``), ``metric: concurrency`` with ``target`` set to
``scale.target_concurrency`` (an integer, rounded up), and
``scale-to-zero-pod-retention-period`` from ``idle_timeout`` (how long the last replica stays
after traffic stops). ``containerConcurrency`` 0 (no hard
limit per replica, as on modelplane: requests beyond the target queue, they are not refused).
"""

from __future__ import annotations

import math
from typing import Any

from modelplane.backends.export import image
from modelplane.backends.export.bundle import (
    Bundle,
    ExportOptions,
    dump_yaml,
    duration,
    header,
    replicas_range,
)
from modelplane.backends.export.kubernetes import container, labels, warn_buckets
from modelplane.spec import DeploymentSpec

PREFIX = "autoscaling.knative.dev/"


def autoscaling(spec: DeploymentSpec) -> dict[str, str]:
    low, high = replicas_range(spec)
    notes = {
        PREFIX + "min-scale": str(low),
        PREFIX + "max-scale": str(high),
    }
    if spec.mode == "serverless":
        notes[PREFIX + "metric"] = "concurrency"
        # Knative documents the target as an integer: round a fractional one up.
        notes[PREFIX + "target"] = str(math.ceil(spec.scale.target_concurrency))
        notes[PREFIX + "scale-to-zero-pod-retention-period"] = duration(spec.scale.idle_timeout)
    return notes


def render(spec: DeploymentSpec, options: ExportOptions) -> Bundle:
    bundle = image.render(spec, options)
    meta: dict[str, Any] = {"name": spec.name, "labels": labels(spec)}
    if options.namespace:
        meta["namespace"] = options.namespace
    if spec.description:
        meta["annotations"] = {"modelplane.dev/description": spec.description}
    service: dict[str, Any] = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "template": {
                "metadata": {"labels": labels(spec), "annotations": autoscaling(spec)},
                "spec": {
                    "containerConcurrency": 0,
                    "containers": [
                        container(
                            spec,
                            options,
                            bundle,
                            name="model",
                            port_name="http1",
                            serving=True,
                        )
                    ],
                },
            }
        },
    }
    target = spec.scale.target_concurrency
    if spec.mode == "serverless" and not float(target).is_integer():
        bundle.warnings.append(
            f"scale.target_concurrency {target:g}: Knative's target is an integer; written as "
            f"{math.ceil(target)}"
        )
    if spec.mode == "serverless" and spec.scale.warm_template:
        bundle.warnings.append(
            "scale.warm_template: Knative starts every replica from a fresh container, so a "
            "cold start from zero pays the model's import and load time (no forked template)"
        )
    warn_buckets(spec, bundle, "Knative Serving")
    bundle.files["knative.yaml"] = header(spec, "knative") + dump_yaml([service])
    return bundle
