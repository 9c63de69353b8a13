"""Parsing batch locations into typed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelplane.errors import InvalidInput
from modelplane.storage.uri import LocalLocation, S3Location, parse_location


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("s3://bucket", S3Location("bucket", "")),
        ("s3://bucket/", S3Location("bucket", "")),
        ("s3://bucket/in/", S3Location("bucket", "in/")),
        ("s3://bucket/in/img", S3Location("bucket", "in/img")),
        ("S3://bucket/a?b#c", S3Location("bucket", "a?b#c")),
        ("data/inputs", LocalLocation(Path("data/inputs"))),
        ("/srv/data", LocalLocation(Path("/srv/data"))),
        ("C:\\data", LocalLocation(Path("C:\\data"))),
        ("file:///srv/my%20data", LocalLocation(Path("/srv/my data"))),
        ("file://localhost/srv", LocalLocation(Path("/srv"))),
    ],
)
def test_locations_parse_to_typed_values(text: str, expected: object) -> None:
    assert parse_location(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "non-empty"),
        ("s3://", "names no bucket"),
        ("s3:///prefix", "names no bucket"),
        ("s3://Bad_Bucket/x", "bucket name"),
        ("s3://bucket/../x", "'..' segment"),
        ("s3://bucket//x", "leading '/'"),
        ("gs://bucket/x", "unsupported scheme 'gs'"),
        ("http://host/x", "unsupported scheme 'http'"),
        ("file://otherhost/x", "names the host"),
        ("file://relative", "names the host"),
    ],
)
def test_bad_locations_are_refused_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_location(text)
    assert problem in caught.value.message


def test_s3_location_renders_and_joins_keys() -> None:
    assert str(S3Location("bkt", "in/")) == "s3://bkt/in/"
    assert S3Location("bkt", "in/").key_for("x.png") == "in/x.png"
    assert S3Location("bkt", "in").key_for("x.png") == "in/x.png"
    assert S3Location("bkt").key_for("x.png") == "x.png"
    assert parse_location(str(S3Location("bkt", "in/"))) == S3Location("bkt", "in/")
