"""Key, prefix, bucket-name and content-type rules: the path tricks they must refuse."""

from __future__ import annotations

import pytest

from modelplane.errors import InvalidInput
from modelplane.storage.keys import (
    MAX_KEY_BYTES,
    validate_bucket_name,
    validate_content_type,
    validate_key,
    validate_prefix,
)


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "empty"),
        ("../x", "'..' segment"),
        ("a/../../b", "'..' segment"),
        ("a/..", "'..' segment"),
        ("..", "'..' segment"),
        (".", "'.' segment"),
        ("./a", "'.' segment"),
        ("a/./b", "'.' segment"),
        ("/etc/passwd", "leading '/'"),
        ("a\x00b", "U+0000"),
        ("a\nb", "U+000A"),
        ("a\x7fb", "U+007F"),
        ("a\x85b", "U+0085"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("a\\b", "backslash"),
        ("..\\..\\windows", "backslash"),
        ("bad\udcffsurrogate", "not valid Unicode"),
    ],
)
def test_path_tricks_are_refused_with_a_message_naming_the_problem(key: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_key(key)

    assert problem in caught.value.message
    if key:
        assert repr(key) in caught.value.message
    assert caught.value.fields["key"] == key


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "inputs/image.png",
        "données/été.csv",
        "日本語/ファイル.txt",
        "emoji-🙂",
        "..hidden/...three/a..b",
        ".env",
        "with space/and+plus?#.txt",
        "x" * MAX_KEY_BYTES,
    ],
)
def test_ordinary_and_unicode_keys_are_accepted(key: str) -> None:
    assert validate_key(key) == key


def test_key_length_is_counted_in_utf8_bytes() -> None:
    assert validate_key("é" * (MAX_KEY_BYTES // 2)) == "é" * 512
    with pytest.raises(InvalidInput, match="1026 bytes in UTF-8; the limit is 1024"):
        validate_key("é" * 513)
    with pytest.raises(InvalidInput, match="1025 bytes"):
        validate_key("x" * (MAX_KEY_BYTES + 1))


def test_non_string_keys_are_refused() -> None:
    with pytest.raises(InvalidInput, match="must be a string, not bytes"):
        validate_key(b"a")


@pytest.mark.parametrize("prefix", ["", "in/", "in/ima", ".", "..", "a/.", "a/..x", "in"])
def test_prefixes_may_end_in_a_partial_or_empty_segment(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/in", "../in", "a/../b", "a//", "./x", "a\\", "a\x00"])
def test_prefixes_refuse_path_tricks_in_complete_segments(prefix: str) -> None:
    with pytest.raises(InvalidInput, match="prefix"):
        validate_prefix(prefix)


def test_prefix_messages_name_the_argument() -> None:
    with pytest.raises(InvalidInput, match="start_after '/x'"):
        validate_prefix("/x", what="start_after")


@pytest.mark.parametrize("name", ["abc", "my-bucket", "my.bucket.v2", "0ab", "a" * 63, "x-1"])
def test_valid_bucket_names(name: str) -> None:
    assert validate_bucket_name(name) == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("ab", "2 characters"),
        ("a" * 64, "64 characters"),
        ("Upper", "lowercase"),
        ("under_score", "lowercase"),
        ("-leading", "start and end"),
        ("trailing-", "start and end"),
        (".dot", "start and end"),
        ("dot.", "start and end"),
        ("a..b", "two dots"),
        ("192.168.1.1", "IP address"),
        ("a b", "lowercase"),
        ("../x", "start and end"),
    ],
)
def test_invalid_bucket_names(name: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_bucket_name(name)
    assert problem in caught.value.message
    assert repr(name) in caught.value.message


@pytest.mark.parametrize(
    "ctype", ["image/png", "application/vnd.api+json", "text/plain; charset=utf-8"]
)
def test_valid_content_types(ctype: str) -> None:
    assert validate_content_type(ctype) == ctype


@pytest.mark.parametrize(
    "ctype", ["", "png", "/png", "text/plain\r\nX: y", "té/xt", "a/" + "b" * 300]
)
def test_invalid_content_types(ctype: str) -> None:
    with pytest.raises(InvalidInput, match="content type"):
        validate_content_type(ctype)
