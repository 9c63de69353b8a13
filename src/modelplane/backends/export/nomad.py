"""Target ``nomad``: a Nomad job (HCL) running the exported image with the docker driver.

One group of ``count`` tasks (dedicated: ``replicas``; serverless: ``max(scale.min, 1)``, Nomad
has no scale from zero), a dynamic port mapped to the container's, a Nomad-native service with an
HTTP check on ``/health``, and ``resources``: ``cpu`` in MHz (a core counted as
:data:`MHZ_PER_CORE`), ``memory`` in MB, one ``device "nvidia/gpu"`` block with the GPU count.
"""

from __future__ import annotations

import json

from modelplane.backends.export import image
from modelplane.backends.export.bundle import (
    HEALTH_PATH,
    PORT,
    Bundle,
    ExportOptions,
    header,
    image_ref,
    mebibytes,
    replicas_range,
    spec_digest,
)
from modelplane.spec import DeploymentSpec

MHZ_PER_CORE = 1000
"""Nomad reserves CPU in MHz; modelplane in cores. One core is written as this many MHz."""


def hcl_string(value: str) -> str:
    """An HCL string literal: JSON escapes, and ``${``/``%{`` kept literal (not templates)."""
    return json.dumps(value).replace("${", "$${").replace("%{", "%%{")


def _block(name: str, body: list[str], indent: int) -> list[str]:
    pad = "  " * indent
    return [f"{pad}{name} {{", *body, f"{pad}}}"]


def _attrs(pairs: list[tuple[str, str]], indent: int) -> list[str]:
    pad = "  " * indent
    width = max(len(key) for key, _ in pairs)
    return [f"{pad}{key.ljust(width)} = {value}" for key, value in pairs]


def render(spec: DeploymentSpec, options: ExportOptions) -> Bundle:
    bundle = image.render(spec, options)
    low, high = replicas_range(spec)
    count = max(low, 1)
    if spec.mode == "serverless":
        bundle.warnings.append(
            f"serverless scale {low}..{high}: a Nomad job runs a fixed count ({count}); Nomad "
            "has no scale to zero, and scaling on load needs the Nomad Autoscaler (the job's "
            f"`scaling` block says min {count}, max {high} for it)"
        )
    cpu_mhz = max(1, round(spec.resources.cpu * MHZ_PER_CORE))
    bundle.warnings.append(
        f"resources.cpu {spec.resources.cpu:g} cores: Nomad reserves MHz; written as {cpu_mhz} "
        f"MHz ({MHZ_PER_CORE} MHz a core); adjust to your clients' clock speed"
    )
    resources = _attrs(
        [("cpu", str(cpu_mhz)), ("memory", str(mebibytes(spec.resources.memory)))], 4
    )
    if spec.resources.gpu:
        resources += [
            "",
            *_block('device "nvidia/gpu"', _attrs([("count", str(spec.resources.gpu))], 5), 4),
        ]
    task = [
        *_attrs([("driver", hcl_string("docker"))], 3),
        "",
        *_block(
            "config",
            _attrs(
                [
                    ("image", hcl_string(image_ref(spec, options, bundle))),
                    ("ports", json.dumps(["http"])),
                ],
                4,
            ),
            3,
        ),
    ]
    if spec.env:
        task += [
            "",
            *_block("env", _attrs([(k, hcl_string(v)) for k, v in sorted(spec.env.items())], 4), 3),
        ]
    task += ["", *_block("resources", resources, 3)]
    check = _attrs(
        [
            ("type", hcl_string("http")),
            ("path", hcl_string(HEALTH_PATH)),
            ("interval", hcl_string("10s")),
            ("timeout", hcl_string("3s")),
        ],
        4,
    )
    service = [
        *_attrs(
            [
                ("name", hcl_string(spec.name)),
                ("port", hcl_string("http")),
                ("provider", hcl_string("nomad")),
            ],
            3,
        ),
        "",
        *_block("check", check, 3),
    ]
    group = [
        *_attrs([("count", str(count))], 2),
        "",
        *_block("network", _block('port "http"', _attrs([("to", str(PORT))], 4), 3), 2),
        "",
        *_block("service", service, 2),
    ]
    if spec.mode == "serverless":
        group += [
            "",
            *_block(
                "scaling",
                _attrs([("enabled", "true"), ("min", str(count)), ("max", str(high))], 3),
                2,
            ),
        ]
    group += ["", *_block('task "model"', task, 2)]
    meta = _attrs(
        [
            ("modelplane_spec", hcl_string(spec.name)),
            ("modelplane_spec_sha256", hcl_string(spec_digest(spec))),
        ],
        2,
    )
    job = [
        *_attrs([("type", hcl_string("service")), ("datacenters", json.dumps(["*"]))], 1),
        "",
        *_block("meta", meta, 1),
        "",
        *_block('group "model"', group, 1),
    ]
    if spec.input:
        bundle.warnings.append(
            f"input/output buckets ({spec.input} -> {spec.output}): a Nomad job has no bucket "
            "trigger; it serves synchronous predictions (use --target compose or oscar for jobs)"
        )
    text = "\n".join(_block(f"job {hcl_string(spec.name)}", job, 0))
    bundle.files[f"{spec.name}.nomad.hcl"] = header(spec, "nomad") + text + "\n"
    return bundle
