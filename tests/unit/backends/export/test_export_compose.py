"""compose.yaml, validated against the Compose Specification's JSON schema (the subset of it we
write, transcribed in schemas/ with its source), parsed by a strict, spec-compliant Compose parser
(the ``compose_spec`` Rust library through the ``compose-spec`` bindings: unknown keys and
malformed values are errors) and checked field by field against the specification's meaning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from compose_spec import PyCompose
from tests.unit.backends.export.cases import CASES

from modelplane.backends.export import render
from modelplane.backends.export.bundle import PORT
from modelplane.backends.export.image import HEALTHCHECK

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "compose-spec.subset.json").read_text())


def compose(case: str) -> tuple[dict[str, Any], dict[str, Any], list[str], dict[str, str]]:
    c = CASES[case]
    bundle = render(c.spec, "compose", c.options())
    text = bundle.files["compose.yaml"]
    raw = yaml.safe_load(text)
    jsonschema.Draft202012Validator(SCHEMA).validate(raw)
    parsed = PyCompose.from_yaml(text).to_dict()  # raises ValueError on anything off-spec
    return parsed, raw, bundle.warnings, bundle.files


@pytest.mark.parametrize("case", list(CASES))
def test_the_file_is_valid_compose(case: str) -> None:
    parsed, raw, _, _ = compose(case)
    spec = CASES[case].spec
    assert parsed["name"] == spec.name
    service = parsed["services"][spec.name]
    assert service["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    assert service["healthcheck"]["test"] == ["CMD", "python", "-c", HEALTHCHECK]
    limits = service["deploy"]["resources"]["limits"]
    assert float(limits["cpus"]) == spec.resources.cpu
    assert raw["services"][spec.name]["deploy"]["resources"]["limits"]["memory"] == (
        f"{spec.resources.memory // 2**20}m"
    )


def test_the_schema_and_the_parser_reject_an_unknown_key() -> None:
    _, raw, _, _ = compose("dedicated")
    raw["services"]["echo"]["replica"] = 2
    with pytest.raises(ValueError, match="replica"):
        PyCompose.from_yaml(yaml.safe_dump(raw))
    with pytest.raises(jsonschema.ValidationError, match="replica"):
        jsonschema.Draft202012Validator(SCHEMA).validate(raw)
    _, raw, _, _ = compose("buckets")
    raw["services"]["jobs"]["depends_on"]["buckets"]["condition"] = "service_done"
    with pytest.raises(jsonschema.ValidationError, match="service_done"):
        jsonschema.Draft202012Validator(SCHEMA).validate(raw)


def test_dedicated_runs_n_replicas_on_their_own_host_ports() -> None:
    parsed, _, warnings, _ = compose("dedicated")
    service = parsed["services"]["echo"]
    assert service["deploy"]["replicas"] == 2
    assert service["ports"] == [PORT]  # a container port alone: Docker picks each host port
    assert any("no load balancer" in w for w in warnings)


def test_gpus_are_device_reservations_and_env_stays_literal() -> None:
    parsed, raw, _, _ = compose("gpu")
    devices = parsed["services"]["digits-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    # Compose interpolates ${…}; $$ is its escape for a literal $.
    env = raw["services"]["digits-gpu"]["environment"]
    assert {k: v.replace("$$", "$") for k, v in env.items()} == CASES["gpu"].spec.env


def test_buckets_bring_an_s3_server_the_buckets_and_the_job_runner() -> None:
    parsed, raw, warnings, files = compose("buckets")
    services = parsed["services"]
    assert set(services) == {"digits-jobs", "s3", "buckets", "jobs"}
    assert services["buckets"]["depends_on"] == {"s3": {"condition": "service_healthy"}}
    assert raw["services"]["buckets"]["entrypoint"][-1].endswith(
        "mc mb --ignore-existing s3/digits-in s3/digits-out"
    )
    jobs = raw["services"]["jobs"]
    assert jobs["depends_on"] == {"buckets": {"condition": "service_completed_successfully"}}
    command = jobs["command"]
    assert command[:2] == ["modelplane", "up"]
    assert command[command.index("--storage") + 1] == "s3"
    assert command[command.index("--s3-endpoint") + 1] == "http://s3:9000"
    assert "./platform:/specs:ro" in jobs["volumes"]
    platform_spec = yaml.safe_load(files["platform/digits-jobs/deployment.yaml"])
    assert platform_spec["model"]["path"] == "/model"
    assert (platform_spec["input"], platform_spec["output"]) == ("digits-in", "digits-out")
    assert "/api/v1/health" in jobs["healthcheck"]["test"][-1]
    assert set(parsed["volumes"]) == {"s3-data", "jobs-data"}
    assert any("S3_ACCESS_KEY" in w for w in warnings)


def test_serverless_is_one_replica_and_says_compose_does_not_autoscale() -> None:
    parsed, _, warnings, _ = compose("serverless")
    assert parsed["services"]["echo-serverless"]["deploy"]["replicas"] == 1
    assert any("neither autoscales nor scales to zero" in w for w in warnings)
