"""The pieces behind OSCAR's storage: the S3 endpoint's decoding, bucket access, presigning, the
files bundle and where a job's files are written (pure, or over a real local bucket store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelplane.fronts.files import BUNDLE, CODEC, pack, unpack
from modelplane.jobs.results import store_results
from modelplane.jobs.triggers import request_meta, triggers, watch_prefix
from modelplane.model.contract import FileOutput, FileSet, LoadedModel, ModelMetadata, NamedInput
from modelplane.oscar.buckets import BucketMeta, may_access, sign
from modelplane.oscar.fdl import service_from_dict
from modelplane.oscar.links import plan
from modelplane.oscar.mounts import State, sync
from modelplane.oscar.s3api import S3Error, access_key, decode_chunked
from modelplane.security import Principal
from modelplane.spec import DeploymentSpec, StoragePath
from modelplane.storage import LocalBucketStore


def test_aws_chunked_bodies_are_decoded() -> None:
    body = (
        b"5;chunk-signature=ab\r\nhello\r\n6;chunk-signature=cd\r\n world\r\n"
        b"0\r\nx-amz-checksum-crc32:AAAA\r\n\r\n"
    )
    assert decode_chunked(body) == b"hello world"
    with pytest.raises(S3Error):
        decode_chunked(b"5\r\nhel")


@pytest.mark.parametrize(
    ("header", "key"),
    [
        (
            "AWS4-HMAC-SHA256 Credential=tok123/20260101/us-east-1/s3/aws4_request, "
            "SignedHeaders=host, Signature=abc",
            "tok123",
        ),
        ("AWS tok456:sig", "tok456"),
        ("Bearer tok789", None),
        ("", None),
    ],
)
def test_the_access_key_is_read_from_the_signature_header(header: str, key: str | None) -> None:
    assert access_key(header) == key


@pytest.mark.parametrize(
    ("who", "meta", "allowed"),
    [
        (Principal("ana"), BucketMeta(), False),
        (Principal("bob"), BucketMeta(), True),  # the owner
        (Principal("root", admin=True), BucketMeta(), True),
        (Principal("ana"), BucketMeta("public"), True),
        (Principal("ana"), BucketMeta("restricted", ("ana",)), True),
        (Principal("eve"), BucketMeta("restricted", ("ana",)), False),
        (Principal("bob", deployment="svc"), BucketMeta("public"), False),  # a service token
    ],
)
def test_who_may_use_a_bucket(who: Principal, meta: BucketMeta, allowed: bool) -> None:
    assert may_access(who, "bob", meta) is allowed


def test_presign_signatures_bind_method_bucket_key_and_expiry() -> None:
    key = b"k" * 32
    base = sign(key, "GET", "b", "a.txt", 100)
    assert base == sign(key, "GET", "b", "a.txt", 100)
    others = {
        sign(key, "PUT", "b", "a.txt", 100),
        sign(key, "GET", "c", "a.txt", 100),
        sign(key, "GET", "b", "b.txt", 100),
        sign(key, "GET", "b", "a.txt", 101),
        sign(b"x" * 32, "GET", "b", "a.txt", 100),
    }
    assert base not in others and len(others) == 5


def _model(oscar: bool) -> LoadedModel:
    class Echo:
        def load(self) -> None: ...

        def predict(self, inputs: object) -> object:
            return inputs

    extra = {"oscar": {"script": "script.sh"}} if oscar else {}
    return LoadedModel(Echo(), ModelMetadata(name="m", accepts=("*/*",), extra=extra))


def test_the_files_codec_hands_script_services_the_object_name() -> None:
    inputs = CODEC.decode(_model(True), "image/png", b"cat.png", b"PNG")
    assert inputs == NamedInput("cat.png", "image/png", b"PNG")
    result = FileSet(
        (FileOutput(b"1", "text/plain", "a.txt"), FileOutput(b"2", "image/png", "sub/b.png"))
    )
    status, ctype, body = CODEC.encode(_model(True), result, b"cat.png")
    assert (status, ctype) == (200, BUNDLE.encode())
    assert unpack(body) == [("a.txt", b"1"), ("sub/b.png", b"2")]


def test_other_models_answer_one_file_named_after_the_input() -> None:
    inputs = CODEC.decode(_model(False), "text/plain", b"note.txt", b"hi")
    assert inputs["file"].filename == "note.txt" and inputs["file"].data == b"hi"
    _, _, body = CODEC.encode(_model(False), {"label": "x"}, b"note.txt")
    assert unpack(body) == [("note.txt.json", b'{"label":"x"}')]


def _spec(**files: object) -> DeploymentSpec:
    return DeploymentSpec.parse({"name": "d", "model": {"path": "/m"}, "files": files})


def test_job_files_go_to_every_matching_output_under_their_names(tmp_path: Path) -> None:
    storage = LocalBucketStore(tmp_path)
    for b in ("media", "logs"):
        storage.create_bucket(b)
    spec = _spec(
        input={"bucket": "media", "folder": "in"},
        outputs=[
            {"bucket": "media", "folder": "out", "suffix": [".png"]},
            {"bucket": "logs", "prefix": ["meta/"]},
        ],
    )
    bundle = pack(
        [
            FileOutput(b"p1", "image/png", "f1.png"),
            FileOutput(b"m", "application/json", "meta/info.json"),
            FileOutput(b"x", "text/plain", "skip.txt"),
            FileOutput(b"bad", "text/plain", "../escape.png"),
        ]
    )
    first = store_results(storage, spec, "media", "in/clip.mp4", BUNDLE, bundle)
    assert first == "out/f1.png"
    assert [o.key for o in storage.list("media")] == ["out/f1.png"]
    assert [o.key for o in storage.list("logs")] == ["meta/info.json"]
    assert storage.get("media", "out/f1.png") == b"p1"
    assert storage.head("media", "out/f1.png").content_type == "image/png"


def test_bucket_to_bucket_deployments_keep_one_result_per_job(tmp_path: Path) -> None:
    storage = LocalBucketStore(tmp_path)
    storage.create_bucket("outs")
    key = store_results(storage, None, "outs", "a/b.txt", "application/json", b"{}")
    assert key == "a/b.txt.json" and storage.get("outs", key) == b"{}"


def test_what_a_job_asks_of_its_replica() -> None:
    spec = _spec(
        input={"bucket": "media", "folder": "in"}, outputs=[{"bucket": "media", "folder": "out"}]
    )
    assert request_meta(spec, "in/sub/cat.png") == b"files\x00cat.png"
    assert watch_prefix(spec) == "in/"
    assert triggers(spec, "media", "in/x") and not triggers(spec, "media", "out/x")
    plain = DeploymentSpec.parse(
        {"name": "d", "model": {"path": "/m"}, "input": "i1", "output": "o1"}
    )
    assert request_meta(plain, "k") == b"" and watch_prefix(plain) == ""
    assert triggers(plain, "i1", "any/key") and not triggers(plain, "o1", "k")


def test_mount_and_volume_links(tmp_path: Path) -> None:
    service = service_from_dict(
        {
            "name": "svc",
            "script": "true",
            "mount": {"storage_provider": "minio", "path": "shared/cfg"},
            "volume": {"size": "1Gi", "mount_path": "/data"},
        }
    )
    links = plan(service, tmp_path / "buckets", tmp_path / "data")
    assert links == [
        {"at": "mnt/shared/cfg", "to": str(tmp_path / "buckets" / "shared" / "cfg")},
        {"at": "data", "to": str(tmp_path / "data" / "oscar-volumes" / "svc")},
    ]


def test_a_mount_mirror_syncs_both_ways(tmp_path: Path) -> None:
    storage = LocalBucketStore(tmp_path / "buckets")
    storage.create_bucket("shared")
    storage.put("shared", "cfg/a.txt", b"from bucket")
    storage.put("shared", "other/x.txt", b"not under the path")
    folder = tmp_path / "mirror"
    state: State = {}
    path = StoragePath.parse("shared/cfg")
    assert sync(storage, path, folder, state) == 1
    assert (folder / "a.txt").read_bytes() == b"from bucket"
    assert not (folder / "x.txt").exists()
    assert sync(storage, path, folder, state) == 0  # in step: nothing moves
    (folder / "sub").mkdir()
    (folder / "sub" / "new.txt").write_bytes(b"from the script")
    storage.put("shared", "cfg/a.txt", b"changed in the bucket")
    assert sync(storage, path, folder, state) == 2
    assert storage.get("shared", "cfg/sub/new.txt") == b"from the script"
    assert (folder / "a.txt").read_bytes() == b"changed in the bucket"
    # a fresh mirror over identical files transfers nothing
    assert sync(storage, path, folder, {}) == 0
