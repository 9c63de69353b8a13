"""Every OSCAR field is honoured or refused by name, keys decode as Go's encoding/json (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelplane.errors import InvalidInput
from modelplane.oscar.fdl import parse_fdl, service_from_dict
from modelplane.oscar.schema import canonical


def base(**extra: object) -> dict[str, object]:
    return {"name": "svc", "image": "alpine", "script": "echo hi", **extra}


@pytest.mark.parametrize("key", ["variables", "Variables", "VARIABLES", "vArIaBlEs"])
def test_environment_variables_in_any_case(key: str, tmp_path: Path) -> None:
    service = service_from_dict(base(Environment={key: {"INPUT_TYPE": "json"}}))
    assert service.to_spec(tmp_path).env == {"INPUT_TYPE": "json"}


def test_struct_keys_fold_but_map_keys_stay_as_written() -> None:
    folded, unknown = canonical(
        {"NAME": "a", "Input": [{"Path": "b/in", "SUFFIX": [".png"]}], "labels": {"Ab": "1"}}
    )
    assert folded == {
        "name": "a",
        "input": [{"path": "b/in", "suffix": [".png"]}],
        "labels": {"Ab": "1"},
    }
    assert unknown == []


def test_the_later_of_two_keys_for_one_field_wins_as_in_go() -> None:
    folded, _ = canonical({"cpu": "1", "CPU": "2"})
    assert folded == {"cpu": "2"}


def test_keys_that_are_no_field_are_refused_by_name() -> None:
    with pytest.raises(InvalidInput) as info:
        service_from_dict(base(memroy="1Gi", input=[{"path": "b/in", "sufix": [".png"]}]))
    assert "memroy: not a field of an OSCAR service" in info.value.message
    assert "input[0].sufix: not a field" in info.value.message


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"expose": {"api_port": 8080, "min_scale": 1}}, "expose"),
        ({"total_memory": "2Gi"}, "total_memory"),
        ({"total_cpu": "2"}, "total_cpu"),
        ({"enable_sgx": True}, "enable_sgx"),
        ({"federation": {"topology": "star"}}, "federation"),
        ({"replicas": [{"type": "oscar", "cluster_id": "c"}]}, "replicas"),
        ({"clusters": {"c": {"endpoint": "https://x"}}}, "clusters"),
        ({"kserve": {"type": "inference"}}, "kserve"),
        ({"interlink_node_name": "vk"}, "interlink_node_name"),
        ({"isolation_level": "USER"}, "isolation_level"),
        ({"file_stage_in": True}, "file_stage_in"),
        ({"ephemeral_storage_request": "1Gi"}, "ephemeral_storage_request"),
        ({"mount": {"storage_provider": "webdav.dcache", "path": "x/y"}}, "mount"),
        ({"volume": {"size": "1Gi", "mount_path": "data"}}, "volume.mount_path"),
        ({"volume": {"mount_path": "/data"}}, "volume.name is required"),
        ({"output": [{"storage_provider": "minio.edge", "path": "b/out"}]}, "minio.edge"),
    ],
)
def test_fields_modelplane_cannot_honour_are_refused_by_name(
    change: dict[str, object], named: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        service_from_dict(base(**change))
    assert named in info.value.message


def test_fields_at_their_zero_value_are_accepted() -> None:
    # What a Go client sends for an unset field: empty values, an expose without a port.
    service = service_from_dict(
        base(
            expose={"min_scale": 1, "max_scale": 10, "cpu_threshold": 80, "api_port": None},
            total_memory="",
            federation=None,
            isolation_level="SERVICE",
            mount={"storage_provider": "", "path": ""},
            alpine=True,
            image_pull_secrets=["regcred"],
            labels={"team": "a"},
            vo="vo.example",
            token="ignored",
        )
    )
    definition = service.definition()
    assert service.mount is None and "token" not in definition
    assert definition["labels"] == {"team": "a"} and definition["alpine"] is True


def test_several_outputs_with_filters_and_same_bucket_layouts(tmp_path: Path) -> None:
    service = service_from_dict(
        base(
            input=[{"storage_provider": "minio", "path": "media/in", "suffix": ".mp4"}],
            output=[
                {"storage_provider": "minio", "path": "media/out/frames", "suffix": [".png"]},
                {"storage_provider": "minio.default", "path": "media/out/meta", "prefix": ["log"]},
            ],
        )
    )
    spec = service.to_spec(tmp_path)
    assert spec.files is not None
    assert (spec.input, spec.output) == ("media", "media")
    assert str(spec.files.input) == "media/in" and spec.files.input.suffix == (".mp4",)
    assert [str(o) for o in spec.files.outputs] == ["media/out/frames", "media/out/meta"]
    assert spec.files.outputs[1].prefix == ("log",)


def test_variables_become_strings_as_oscar_tooling_writes_them(tmp_path: Path) -> None:
    service = service_from_dict(base(environment={"Variables": {"A": False, "B": 3, "C": None}}))
    assert service.to_spec(tmp_path).env == {"A": "false", "B": "3", "C": ""}


def test_an_fdl_with_a_trailing_tab_is_read(tmp_path: Path) -> None:
    (tmp_path / "script.sh").write_text("echo hi\n")
    text = "functions:\n  oscar:\n  - c:\n      Name: tabbed\t\n      SCRIPT: script.sh\n"
    (service,) = parse_fdl(text, tmp_path)
    assert service["name"] == "tabbed" and service["script"] == "echo hi\n"
