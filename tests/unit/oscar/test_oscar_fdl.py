"""OSCAR service definitions and FDL files, mapped onto deployment specs (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelplane.errors import InvalidInput
from modelplane.oscar.fdl import parse_fdl, read_fdl, service_from_dict

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "oscar"


def base(**extra: object) -> dict[str, object]:
    return {"name": "svc", "image": "alpine", "script": "echo hi", **extra}


def test_a_full_definition_maps_onto_a_serverless_deployment(tmp_path: Path) -> None:
    service = service_from_dict(
        base(
            memory="1Gi",
            cpu="0.5",
            enable_gpu=True,
            synchronous={"min_scale": 1, "max_scale": 3},
            environment={"variables": {"A": "1"}, "secrets": {"S": "x"}},
            input=[{"storage_provider": "minio.default", "path": "in-bucket/input"}],
            output=[{"storage_provider": "minio.default", "path": "out-bucket/results/"}],
            log_level="DEBUG",
            visibility="restricted",
            allowed_users=["ana"],
            alpine=False,  # a field modelplane has no use for: kept, echoed
        )
    )
    spec = service.to_spec(tmp_path)
    assert spec.name == "svc" and spec.mode == "serverless"
    assert spec.model.loader == "oscar" and spec.model.path == str(tmp_path)
    assert spec.resources.cpu == 0.5 and spec.resources.memory == 1024**3
    assert spec.resources.gpu == 1
    assert (spec.scale.min, spec.scale.max) == (1, 3)
    assert (spec.input, spec.output) == ("in-bucket", "out-bucket")
    assert spec.env == {"A": "1", "S": "x"}
    assert service.input_folder == "input"
    assert service.definition()["alpine"] is False
    assert service.definition()["allowed_users"] == ["ana"]


def test_defaults_give_every_service_buckets_for_jobs(tmp_path: Path) -> None:
    service = service_from_dict(base(cpu=1, input=None, environment=None))
    spec = service.to_spec(tmp_path)
    assert (spec.input, spec.output) == ("svc-in", "svc-out")
    assert spec.scale.min == 0 and spec.scale.max == 4 and spec.resources.cpu == 1.0
    assert service.visibility == "private"


def test_a_service_may_name_a_model_instead_of_a_script(tmp_path: Path) -> None:
    data = base(model={"path": "/models/echo", "loader": "python"})
    del data["script"]
    spec = service_from_dict(data).to_spec(tmp_path)
    assert spec.model.path == "/models/echo" and spec.model.loader == "python"


def test_with_both_a_script_and_a_model_the_model_runs(tmp_path: Path) -> None:
    # An exported FDL carries both: the script for a real OSCAR cluster, the model for modelplane.
    data = base(
        model={"path": "/models/echo", "loader": "python"},
        annotations={"modelplane.dev/description": "kept"},
    )
    spec = service_from_dict(data).to_spec(tmp_path)
    assert spec.model.path == "/models/echo" and spec.model.loader == "python"
    assert spec.description == "kept"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Bad_Name"}, "name"),
        ({"script": None}, "either `script`"),
        ({"visibility": "everyone"}, "visibility"),
        ({"input": [{"path": "bkt/in"}], "output": [{"path": "bkt/in/out"}]}, "within input"),
        ({"input": [{"path": "bkt"}], "output": [{"path": "bkt/out"}]}, "within input"),
        ({"input": [{"storage_provider": "s3.aws", "path": "bkt/in"}]}, "storage provider"),
        ({"input": [{"path": "xxx/in"}, {"path": "yyy/in"}]}, "one input path"),
        ({"output": [{"path": "UPPER/out"}]}, "UPPER/out"),
        ({"synchronous": {"min_scale": -1}}, "synchronous.min_scale"),
    ],
)
def test_bad_definitions_are_400s_naming_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        service_from_dict(base(**change))
    assert info.value.status == 400
    assert field in info.value.message


def test_impossible_resources_are_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="memory"):
        service_from_dict(base(memory="lots")).to_spec(tmp_path)
    with pytest.raises(InvalidInput, match="cpu"):
        service_from_dict(base(cpu="many")).to_spec(tmp_path)


def test_fdl_files_read_scripts_relative_to_themselves() -> None:
    services = read_fdl(FIXTURES / "services.yaml")
    assert [s["name"] for s in services] == ["upper", "greet"]
    assert services[0]["script"] == (FIXTURES / "upper.sh").read_text()
    parsed = [service_from_dict(s) for s in services]
    assert parsed[0].input_bucket == "upper-in" and parsed[1].input_bucket == "greet-in"
    assert parsed[1].cpu == "0.25"


def test_fdl_storage_providers_and_model_paths(tmp_path: Path) -> None:
    text = """
functions:
  oscar:
  - c1:
      name: m
      model: {path: ./model, loader: python}
storage_providers:
  s3:
    aws: {access_key: a, secret_key: b, region: us-east-1}
"""
    (service,) = parse_fdl(text, tmp_path)
    assert service["model"]["path"] == str((tmp_path / "model").resolve())
    assert service["storage_providers"]["s3"]["aws"]["region"] == "us-east-1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("functions: [", "not valid YAML"),
        ("name: x", "functions: oscar"),
        ("functions:\n  oscar:\n  - a: 1\n", "is a mapping"),
        ("functions:\n  oscar:\n  - {a: {name: x}, b: {name: y}}\n", "<cluster id>"),
        ("functions:\n  oscar:\n  - a: {name: x, script: missing.sh}\n", "cannot read script"),
    ],
)
def test_bad_fdl_files(text: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_fdl(text, tmp_path)
