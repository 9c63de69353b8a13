"""The Nomad job, parsed by a real HCL2 parser (python-hcl2) and checked block by block against
Nomad's job specification (job -> group -> network/service/check/scaling/task -> config/env/
resources -> device; attribute names and types as the job-specification pages list them)."""

from __future__ import annotations

import json
from typing import Any

import hcl2
import pytest
from tests.unit.backends.export.cases import CASES

from modelplane.backends.export import render
from modelplane.backends.export.bundle import HEALTH_PATH, PORT
from modelplane.backends.export.nomad import MHZ_PER_CORE

# Attributes and blocks each block may hold (a subset of the documented ones: those we write).
ALLOWED: dict[str, set[str]] = {
    "job": {"type", "datacenters", "meta", "group"},
    "group": {"count", "network", "service", "scaling", "task"},
    "network": {"port"},
    "port": {"to", "static"},
    "service": {"name", "port", "provider", "check"},
    "check": {"type", "path", "interval", "timeout"},
    "scaling": {"enabled", "min", "max"},
    "task": {"driver", "config", "env", "resources"},
    "config": {"image", "ports"},  # the docker driver's
    "resources": {"cpu", "memory", "device"},
    "device": {"count"},
}
LABELLED = {"job", "group", "port", "task", "device"}
FREE = {"meta", "env"}
"""Blocks of free string keys and string values."""


def literal(value: Any) -> Any:
    """python-hcl2 keeps string quotes and the ``$${`` escape; give the value HCL means."""
    if isinstance(value, str) and value.startswith('"'):
        return json.loads(value).replace("$${", "${").replace("%%{", "%{")
    if isinstance(value, list):
        return [literal(v) for v in value]
    return value


def is_block(value: Any) -> bool:
    items = value if isinstance(value, list) else [value]
    return bool(items) and all(isinstance(i, dict) for i in items)


def block(raw: Any, kind: str) -> dict[str, Any]:
    """One block as a plain dict, checked against ALLOWED on the way (labels kept as ``_label``)."""
    (body,) = raw if isinstance(raw, list) else [raw]
    if kind in LABELLED:
        ((label, body),) = body.items()
        body = {**body, "_label": literal(label)}
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key in ("__is_block__", "_label"):
            out[key] = value
            continue
        if kind in FREE:
            assert isinstance(literal(value), str), f"{kind}.{key} must be a string"
        else:
            assert key in ALLOWED[kind], f"{kind} block has no {key!r} in Nomad's job spec"
        out[key] = block(value, key) if is_block(value) else literal(value)
    return out


def job(case: str) -> dict[str, Any]:
    c = CASES[case]
    files = render(c.spec, "nomad", c.options()).files
    parsed = hcl2.loads(files[f"{c.spec.name}.nomad.hcl"])
    return block(parsed["job"], "job")


@pytest.mark.parametrize("case", list(CASES))
def test_the_job_parses_and_holds_only_documented_fields(case: str) -> None:
    j = job(case)
    spec = CASES[case].spec
    assert j["_label"] == spec.name and j["type"] == "service" and j["datacenters"] == ["*"]
    group = j["group"]
    task = group["task"]
    assert task["driver"] == "docker"
    assert task["config"] == {
        "__is_block__": True,
        "image": f"registry.example/models/{spec.name}:1.0",
        "ports": ["http"],
    }
    assert group["network"]["port"]["_label"] == "http"
    assert group["network"]["port"]["to"] == PORT
    service = group["service"]
    assert (service["name"], service["port"], service["provider"]) == (spec.name, "http", "nomad")
    assert (service["check"]["type"], service["check"]["path"]) == ("http", HEALTH_PATH)
    assert j["meta"]["modelplane_spec"] == spec.name


def test_resources_are_mhz_mb_and_an_nvidia_device() -> None:
    j = job("gpu")
    res = j["group"]["task"]["resources"]
    assert res["cpu"] == 2 * MHZ_PER_CORE and res["memory"] == 2048
    assert res["device"]["_label"] == "nvidia/gpu" and res["device"]["count"] == 1
    assert j["group"]["count"] == 3 and "scaling" not in j["group"]
    env = {k: v for k, v in j["group"]["task"]["env"].items() if k != "__is_block__"}
    assert env == CASES["gpu"].spec.env  # ${USER} stays literal, not a Nomad interpolation


def test_serverless_is_one_task_with_scaling_bounds_and_a_warning() -> None:
    c = CASES["serverless"]
    bundle = render(c.spec, "nomad", c.options())
    j = block(hcl2.loads(bundle.files["echo-serverless.nomad.hcl"])["job"], "job")
    assert j["group"]["count"] == 1
    assert (j["group"]["scaling"]["min"], j["group"]["scaling"]["max"]) == (1, 3)
    assert "device" not in j["group"]["task"]["resources"]
    assert any("no scale to zero" in w for w in bundle.warnings)
    assert any("MHz" in w for w in bundle.warnings)


def test_the_check_rejects_an_undocumented_field() -> None:
    with pytest.raises(AssertionError, match="mbits"):
        block(hcl2.loads("resources {\n  mbits = 10\n}\n")["resources"], "resources")
