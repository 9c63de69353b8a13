"""One conformance suite for every BucketStore: the local filesystem store and S3.

The S3 case runs against moto's standalone S3 server (``python -m moto.server``), a real HTTP
server on 127.0.0.1 started once per session by ``conftest.py``; nothing is mocked in-process.
It is skipped, with the reason, when boto3 or ``moto[server]`` is not installed.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from modelplane.errors import AlreadyExists, InvalidInput, NotFound
from modelplane.storage import (
    DEFAULT_CONTENT_TYPE,
    BucketStore,
    LocalBucketStore,
    S3BucketStore,
)

pytestmark = pytest.mark.integration

BAD_KEYS = ["", "../x", "a/../../b", "/etc/passwd", "a\x00b", "a//b", ".", "a/./b", "a\\b", "a/"]
BAD_BUCKETS = ["ab", "Upper", "-lead", "trail-", "a..b", "192.168.1.1", "a_b", "x" * 64]


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BucketStore:
    """Each implementation of the seam; S3 means moto's server on loopback."""
    if request.param == "local":
        return LocalBucketStore(tmp_path / "buckets")
    endpoint = request.getfixturevalue("moto_endpoint")
    return S3BucketStore(
        endpoint_url=endpoint, region="us-east-1", access_key="testing", secret_key="testing"
    )


@pytest.fixture
def bucket(store: BucketStore) -> Iterator[str]:
    """A fresh, empty bucket (unique name, since the S3 server lives for the whole session)."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    store.create_bucket(name)
    yield name
    if store.bucket_exists(name):
        store.delete_bucket(name, force=True)


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def test_round_trip_put_get_head(store: BucketStore, bucket: str) -> None:
    data = b'{"x": [1, 2, 3]}'
    info = store.put(bucket, "inputs/one.json", data, content_type="application/json")

    assert (info.bucket, info.key, info.size, info.etag) == (
        bucket,
        "inputs/one.json",
        16,
        md5(data),
    )
    assert info.content_type == "application/json"
    assert info.last_modified.tzinfo is UTC
    assert store.get(bucket, "inputs/one.json") == data
    assert store.head(bucket, "inputs/one.json") == info
    assert store.exists(bucket, "inputs/one.json")
    assert not store.exists(bucket, "inputs/two.json")


def test_put_accepts_binary_streams(store: BucketStore, bucket: str) -> None:
    info = store.put(bucket, "stream.bin", io.BytesIO(b"streamed"))

    assert info.size == 8
    assert info.etag == md5(b"streamed")
    assert store.get(bucket, "stream.bin") == b"streamed"


def test_content_types_are_preserved_and_defaulted(store: BucketStore, bucket: str) -> None:
    store.put(bucket, "a.png", b"\x89PNG", content_type="image/png")
    store.put(bucket, "b.txt", b"hi", content_type="text/plain; charset=utf-8")
    store.put(bucket, "c", b"?")

    assert store.head(bucket, "a.png").content_type == "image/png"
    assert store.head(bucket, "b.txt").content_type == "text/plain; charset=utf-8"
    assert store.head(bucket, "c").content_type == DEFAULT_CONTENT_TYPE


def test_overwrite_replaces_content_and_metadata(store: BucketStore, bucket: str) -> None:
    store.put(bucket, "k", b"first version", content_type="text/plain")
    info = store.put(bucket, "k", b"second", content_type="application/json")

    assert store.get(bucket, "k") == b"second"
    assert store.head(bucket, "k") == info
    assert (info.size, info.etag, info.content_type) == (6, md5(b"second"), "application/json")
    assert [o.key for o in store.list(bucket)] == ["k"]


def test_list_is_sorted_and_filters_by_prefix(store: BucketStore, bucket: str) -> None:
    # "in-x" sorts between "in" and "in/..." by code point ('-' < '/'): the walk must agree.
    for key in ["in/b.txt", "in/a/deep.txt", "in-x", "out/r.json", "in/c.txt", "in.txt", "in0"]:
        store.put(bucket, key, key.encode())

    listed = store.list(bucket)
    assert [o.key for o in listed] == sorted(
        ["in/b.txt", "in/a/deep.txt", "in-x", "out/r.json", "in/c.txt", "in.txt", "in0"]
    )
    assert all(o.content_type is None and o.bucket == bucket for o in listed)
    assert {o.key: o.etag for o in listed}["in-x"] == md5(b"in-x")
    assert [o.key for o in store.list(bucket, prefix="in/")] == [
        "in/a/deep.txt",
        "in/b.txt",
        "in/c.txt",
    ]
    assert [o.key for o in store.list(bucket, prefix="in/a")] == ["in/a/deep.txt"]
    assert [o.key for o in store.list(bucket, prefix="in")] == [
        "in-x",
        "in.txt",
        "in/a/deep.txt",
        "in/b.txt",
        "in/c.txt",
        "in0",
    ]
    assert store.list(bucket, prefix="nothing/") == []


def test_start_after_is_a_cursor_for_new_objects(store: BucketStore, bucket: str) -> None:
    keys = [f"jobs/{i:03d}.json" for i in range(7)] + ["jobs/sub/x.json", "other"]
    for key in keys:
        store.put(bucket, key, b"{}")

    seen: list[str] = []
    cursor: str | None = None
    while page := store.list(bucket, prefix="jobs/", start_after=cursor, limit=3):
        assert len(page) <= 3
        seen.extend(o.key for o in page)
        cursor = page[-1].key
    assert seen == keys[:-1]

    # A watcher polling with its cursor sees only what arrived after it.
    store.put(bucket, "jobs/zzz.json", b"{}")
    assert [o.key for o in store.list(bucket, prefix="jobs/", start_after=cursor)] == [
        "jobs/zzz.json"
    ]
    assert [o.key for o in store.list(bucket, start_after="jobs/005.json", limit=2)] == [
        "jobs/006.json",
        "jobs/sub/x.json",
    ]


def test_delete_removes_and_is_idempotent(store: BucketStore, bucket: str) -> None:
    store.put(bucket, "a/b/c.txt", b"1")
    store.put(bucket, "a/d.txt", b"2")

    store.delete(bucket, "a/b/c.txt")
    store.delete(bucket, "a/b/c.txt")
    store.delete(bucket, "never/was")

    assert not store.exists(bucket, "a/b/c.txt")
    assert [o.key for o in store.list(bucket)] == ["a/d.txt"]
    with pytest.raises(NotFound):
        store.get(bucket, "a/b/c.txt")


@pytest.mark.parametrize(
    "call",
    [
        lambda s, b: s.get(b, "missing.txt"),
        lambda s, b: s.head(b, "missing.txt"),
        lambda s, b: s.get_to_path(b, "missing.txt", Path("/nonexistent-dir/x")),
    ],
    ids=["get", "head", "get_to_path"],
)
def test_missing_object_is_not_found(
    store: BucketStore, bucket: str, call: Callable[[BucketStore, str], Any]
) -> None:
    with pytest.raises(NotFound):
        call(store, bucket)


def test_missing_bucket_is_not_found(store: BucketStore) -> None:
    name = f"absent-{uuid.uuid4().hex[:12]}"
    assert not store.bucket_exists(name)
    for call in [
        lambda: store.get(name, "k"),
        lambda: store.head(name, "k"),
        lambda: store.put(name, "k", b"x"),
        lambda: store.list(name),
        lambda: store.exists(name, "k"),
        lambda: store.delete(name, "k"),
        lambda: store.delete_bucket(name),
    ]:
        with pytest.raises(NotFound):
            call()


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
def test_bad_keys_are_invalid_input_for_every_method(
    store: BucketStore, bucket: str, key: str, tmp_path: Path
) -> None:
    calls: list[Callable[[], object]] = [
        lambda: store.put(bucket, key, b"x"),
        lambda: store.get(bucket, key),
        lambda: store.get_to_path(bucket, key, tmp_path / "out"),
        lambda: store.head(bucket, key),
        lambda: store.exists(bucket, key),
        lambda: store.delete(bucket, key),
    ]
    for call in calls:
        with pytest.raises(InvalidInput):
            call()
    assert store.list(bucket) == []
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("prefix", ["/abs", "../up", "a//b", "a/../", "x\x00"], ids=repr)
def test_bad_prefixes_and_cursors_are_invalid_input(
    store: BucketStore, bucket: str, prefix: str
) -> None:
    with pytest.raises(InvalidInput):
        store.list(bucket, prefix=prefix)
    with pytest.raises(InvalidInput):
        store.list(bucket, start_after=prefix)


@pytest.mark.parametrize("name", BAD_BUCKETS)
def test_bad_bucket_names_are_invalid_input(store: BucketStore, name: str) -> None:
    for call in [
        lambda: store.create_bucket(name),
        lambda: store.bucket_exists(name),
        lambda: store.delete_bucket(name),
        lambda: store.put(name, "k", b"x"),
        lambda: store.get(name, "k"),
        lambda: store.list(name),
    ]:
        with pytest.raises(InvalidInput):
            call()


def test_bad_limit_and_content_type_are_invalid_input(store: BucketStore, bucket: str) -> None:
    for limit in [0, -1]:
        with pytest.raises(InvalidInput):
            store.list(bucket, limit=limit)
    for ctype in ["", "text", "text/plain\r\nX-Evil: 1"]:
        with pytest.raises(InvalidInput):
            store.put(bucket, "k", b"x", content_type=ctype)
    assert not store.exists(bucket, "k")


def test_unicode_keys_round_trip(store: BucketStore, bucket: str) -> None:
    keys = ["données/été.csv", "日本語/ファイル.txt", "emoji-🙂.bin", "spaces and+plus?.txt"]
    for key in keys:
        store.put(bucket, key, key.encode())

    assert [o.key for o in store.list(bucket)] == sorted(keys)
    for key in keys:
        assert store.get(bucket, key) == key.encode()


def test_large_object_round_trip(store: BucketStore, bucket: str, tmp_path: Path) -> None:
    data = hashlib.sha256(b"seed").digest() * (8 * 1024 * 1024 // 32)  # 8 MiB
    info = store.put(bucket, "big/blob.bin", io.BytesIO(data))

    assert (info.size, info.etag) == (len(data), md5(data))
    assert store.get(bucket, "big/blob.bin") == data
    target = tmp_path / "blob.bin"
    target.write_bytes(b"old content")
    copied = store.get_to_path(bucket, "big/blob.bin", target)
    assert target.read_bytes() == data
    assert (copied.size, copied.etag) == (len(data), md5(data))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_buckets_lifecycle(store: BucketStore) -> None:
    name = f"life-{uuid.uuid4().hex[:12]}"
    store.create_bucket(name)
    store.create_bucket(name)  # ensuring twice is fine

    assert store.bucket_exists(name)
    assert name in store.list_buckets()
    assert store.list_buckets() == sorted(store.list_buckets())

    store.put(name, "x/y", b"1")
    with pytest.raises(AlreadyExists):
        store.delete_bucket(name)
    assert store.get(name, "x/y") == b"1"

    store.delete_bucket(name, force=True)
    assert not store.bucket_exists(name)
    assert name not in store.list_buckets()

    store.create_bucket(name)
    store.delete_bucket(name)
    assert not store.bucket_exists(name)
