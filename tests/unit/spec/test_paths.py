"""Storage paths: what triggers a job, where files go, which layouts loop (pure)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from modelplane.spec import DeploymentSpec
from modelplane.spec.paths import (
    JobFiles,
    StoragePath,
    destinations,
    find_cycle,
    matches,
    overlaps,
    safe_name,
)


def P(path: str, **filters: object) -> StoragePath:
    return StoragePath.parse(path, **filters)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("in/cat.png", True),
        ("in/sub/cat.png", True),
        ("in/cat.txt", False),  # suffix filter
        ("out/cat.png", False),  # another folder
        ("inbox/cat.png", False),  # a folder whose name only starts like it
        ("in/", False),  # a folder marker
    ],
)
def test_input_path_and_filters_decide_what_triggers(key: str, expected: bool) -> None:
    assert matches(P("photos/in", suffix=(".png",)), "photos", key) is expected


def test_prefix_filters_apply_to_the_name_under_the_folder() -> None:
    path = P("bkt/in", prefix=("raw-",))
    assert matches(path, "bkt", "in/raw-1.jpg") and not matches(path, "bkt", "in/cooked-1.jpg")
    assert not matches(path, "other", "in/raw-1.jpg")


def test_a_whole_bucket_input_takes_every_key() -> None:
    assert matches(P("bkt"), "bkt", "x") and matches(P("bkt"), "bkt", "deep/x")


def test_files_go_to_every_output_whose_filters_pass() -> None:
    outs = (
        P("bkt/out/images", suffix=(".png", ".jpg")),
        P("bkt/out/all"),
        P("cat", prefix=("log",)),
    )
    assert destinations(outs, "frame-1.png") == [
        ("bkt", "out/images/frame-1.png"),
        ("bkt", "out/all/frame-1.png"),
    ]
    assert destinations(outs, "log.txt") == [("bkt", "out/all/log.txt"), ("cat", "log.txt")]


@pytest.mark.parametrize(
    ("source", "target", "loops"),
    [
        (P("bkt/in"), P("bkt/out"), False),
        (P("bkt/in"), P("cat/in"), False),
        (P("bkt/in"), P("bkt/in"), True),
        (P("bkt/in"), P("bkt/in/out"), True),
        (P("bkt"), P("bkt/out"), True),
        (P("bkt/in/x"), P("bkt/in"), True),
        (P("bkt/in", suffix=(".jpg",)), P("bkt/in", suffix=(".png",)), False),
        (P("bkt/in", suffix=(".png",)), P("bkt/in", suffix=("x.png",)), True),
    ],
)
def test_overlaps(source: StoragePath, target: StoragePath, loops: bool) -> None:
    assert overlaps(source, target) is loops


def test_a_service_writing_into_its_own_input_is_refused() -> None:
    with pytest.raises(ValidationError, match="lies within input path bkt/in"):
        JobFiles(input=P("bkt/in"), outputs=(P("bkt/out"), P("bkt/in/results")))


def test_cycles_through_several_deployments_are_named() -> None:
    graph = {
        "a": (P("media/in"), (P("media/mid"),)),
        "b": (P("media/mid"), (P("media/late"),)),
        "c": (P("media/late"), (P("media/in"),)),
        "d": (P("media/late"), (P("next/out"),)),
    }
    assert find_cycle(graph, "a") == ["a", "b", "c", "a"]
    assert find_cycle(graph, "d") is None
    graph["c"] = (P("media/late"), (P("media/result"),))
    assert find_cycle(graph, "a") is None


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("a.png", "a.png"),
        ("sub/b.png", "sub/b.png"),
        ("/abs", "abs"),
        ("../x", None),
        ("a/../../x", None),
    ],
)
def test_safe_names(raw: str, name: str | None) -> None:
    assert safe_name(raw) == name


def test_a_spec_with_files_takes_its_buckets_from_them() -> None:
    spec = DeploymentSpec.parse(
        {
            "name": "d",
            "model": {"path": "/m"},
            "files": {
                "input": {"bucket": "same", "folder": "in"},
                "outputs": [{"bucket": "same", "folder": "out"}],
            },
        }
    )
    assert (spec.input, spec.output) == ("same", "same")
    with pytest.raises(Exception, match="input and output must be different buckets"):
        DeploymentSpec.parse({"name": "d", "model": {"path": "/m"}, "input": "x", "output": "x"})


@pytest.mark.parametrize(
    "folder",
    ["", "a", "a/b", "/a/b/", "/", ".a", "a..", "a//b", ".", "..", "a/./b", "a/..", "../a"],
)
def test_the_documents_folder_rule_is_the_validators(folder: str) -> None:
    import re

    schema = StoragePath.model_json_schema()["properties"]
    stated = re.match(schema["folder"]["pattern"], folder) is not None
    try:
        StoragePath(bucket="abc", folder=folder)
        accepted = True
    except ValidationError:
        accepted = False
    assert stated == accepted, folder


@pytest.mark.parametrize("bucket", ["abc", "a.b-c", "ab", "x" * 64, "ABC", "a_b"])
def test_the_documents_bucket_rule_is_the_validators(bucket: str) -> None:
    import re

    rule = StoragePath.model_json_schema()["properties"]["bucket"]
    stated = (
        rule["minLength"] <= len(bucket) <= rule["maxLength"]
        and re.match(rule["pattern"], bucket) is not None
    )
    try:
        StoragePath(bucket=bucket)
        accepted = True
    except ValidationError:
        accepted = False
    assert stated == accepted, bucket
