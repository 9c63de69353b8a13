from __future__ import annotations

from pathlib import Path

import pytest

from modelplane.errors import InvalidSpec
from modelplane.spec import DeploymentSpec, Mode, load_spec, parse_memory


def test_defaults() -> None:
    spec = DeploymentSpec.parse({"name": "m", "model": {"path": "/x"}})
    assert spec.mode is Mode.serverless and spec.scale.min == 0
    assert spec.scale.replicas == 1 and spec.resources.memory == 512 * 2**20


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("512Mi", 512 * 2**20),
        ("2Gi", 2 * 2**30),
        ("1G", 10**9),
        ("100", 100),
        (64, 64),
        ("1.5Gi", int(1.5 * 2**30)),
        ("128mi", 128 * 2**20),
    ],
)
def test_parse_memory(text: str | int, value: int) -> None:
    assert parse_memory(text) == value


@pytest.mark.parametrize("text", ["lots", "-1Mi", "0", "", "12 parsecs"])
def test_parse_memory_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_memory(text)


def test_errors_name_every_bad_field() -> None:
    with pytest.raises(InvalidSpec) as info:
        DeploymentSpec.parse(
            {"name": "x", "model": {"path": "/x", "colour": 1}, "resources": {"gpu": -1}}
        )
    fields = {p["field"] for p in info.value.fields["problems"]}
    assert fields == {"model.colour", "resources.gpu"}
    assert "model.colour: unknown field" in info.value.message


def test_spec_is_frozen() -> None:
    spec = DeploymentSpec.parse({"name": "m", "model": {"path": "/x"}})
    with pytest.raises(ValueError):
        spec.name = "other"  # type: ignore[misc]


def test_round_trip_through_json() -> None:
    spec = DeploymentSpec.parse(
        {
            "name": "m",
            "model": {"path": "/x"},
            "mode": "serverless",
            "scale": {"min": 0, "max": 3},
            "resources": {"memory": "1Gi"},
            "input": "in",
            "output": "out",
            "env": {"A": "1"},
        }
    )
    again = DeploymentSpec.parse(spec.model_dump(mode="json"))
    assert again == spec


def test_load_spec_resolves_model_path_against_the_file(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    f = tmp_path / "spec.yaml"
    f.write_text("name: m\nmodel:\n  path: model\n")
    assert load_spec(f).model.path == str((tmp_path / "model").resolve())


def test_load_spec_reports_bad_yaml(tmp_path: Path) -> None:
    f = tmp_path / "spec.yaml"
    f.write_text("name: [unclosed\n")
    with pytest.raises(InvalidSpec, match="not valid YAML"):
        load_spec(f)
    f.write_text("- a list\n")
    with pytest.raises(InvalidSpec, match="mapping"):
        load_spec(f)
    with pytest.raises(InvalidSpec, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")


@pytest.mark.parametrize("memory", [{}, [], None, "x" * 40, 2**60, float("nan"), "0", True])
def test_memory_that_is_not_a_size_is_a_named_error_not_a_crash(memory: object) -> None:
    with pytest.raises(InvalidSpec) as info:
        DeploymentSpec.parse({"name": "a", "model": {"path": "/m"}, "resources": {"memory": memory}})  # noqa: E501
    assert "resources.memory" in info.value.message


def test_the_openapi_schema_states_what_memory_accepts() -> None:
    schema = DeploymentSpec.model_json_schema()["$defs"]["Resources"]["properties"]["memory"]
    kinds = {s["type"]: s for s in schema["anyOf"]}
    assert kinds["integer"]["minimum"] == 1 and kinds["integer"]["maximum"] == 2**50
    assert kinds["string"]["maxLength"] == 32 and "pattern" in kinds["string"]


@pytest.mark.parametrize("key", ["A", "_x", "a1_B", "1a", "a-b", "MODELPLANE_X", "", "é"])
def test_the_openapi_schema_states_what_env_names_accept(key: str) -> None:
    import re

    env = DeploymentSpec.model_json_schema()["properties"]["env"]
    stated = re.match(env["propertyNames"]["pattern"], key) is not None
    try:
        DeploymentSpec.parse({"name": "a", "model": {"path": "/m"}, "env": {key: "v"}})
        accepted = True
    except InvalidSpec:
        accepted = False
    assert stated == accepted, key
