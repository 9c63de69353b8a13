"""OSCAR's own layouts with OSCAR's own client, on local buckets and on S3 (moto's server).

The services are FDL files and scripts written the way the upstream examples are
(tests/fixtures/oscar/layouts, and examples/oscar, which the README uses): same-bucket
``in``/``out``, input filters, several outputs with filters, a chain of services, ``mount``,
``volume``, secrets, ``Variables`` in upper case. They are created with oscar-python
(``create_service`` from the FDL file) or ``modelplane import-fdl``, fed through oscar-python's
storage client, and every result is checked object by object: its bucket, its key (the name the
script gave it) and its content.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.conftest import start_platform
from tests.polling import eventually
from typer.testing import CliRunner

from modelplane.cli.main import app
from modelplane.controlplane.platform import Platform
from modelplane.oscar.fdl import read_fdl

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("oscar_python") is None,
        reason="the official OSCAR client is not installed: pip install oscar-python==2.2.0",
    ),
]

LAYOUTS = Path(__file__).resolve().parents[2] / "fixtures" / "oscar" / "layouts"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "oscar"  # the README's
FAST = {"watch_interval": 0.2, "autoscale_interval": 0.05, "stable_window": 2.0}
call = asyncio.to_thread


@pytest.fixture(params=["local", "s3"])
async def platform(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Platform]:
    if request.param == "s3":
        endpoint = request.getfixturevalue("moto_endpoint")
        for key, value in {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(key, value)
        p = await start_platform(
            tmp_path / "data", storage="s3", s3_endpoint=endpoint, s3_region="us-east-1", **FAST
        )
    else:
        p = await start_platform(tmp_path / "data", **FAST)
    try:
        yield p
    finally:
        await p.stop()


def oscar(platform: Platform) -> Any:
    from oscar_python.client import Client

    return Client(
        {
            "cluster_id": "oscar-cluster",
            "endpoint": platform.url,
            "user": "admin",
            "password": platform.admin_token,
            "ssl": False,
        }
    )


async def succeeded(client: Any, service: str, n: int) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        jobs = (await call(client.list_jobs, service)).json()["jobs"]
        failed = [j for j, info in jobs.items() if info["status"] == "Failed"]
        assert not failed, (await call(client.get_job_logs, service, failed[0])).text
        ok = {j: i for j, i in jobs.items() if i["status"] == "Succeeded"}
        return ok if len(ok) >= n else None

    result: dict[str, Any] = await eventually(done, timeout=90, interval=0.2)
    return result


async def keys(storage: Any, path: str) -> list[str]:
    listing = await call(storage.list_files_from_path, "minio.default", path)
    return sorted(o["Key"] for o in listing.get("Contents", []))


async def fetch(storage: Any, remote: str, tmp_path: Path) -> bytes:
    target = tmp_path / "downloads"
    target.mkdir(exist_ok=True)
    await call(storage.download_file, "minio.default", str(target), remote)
    return (target / remote.rsplit("/", 1)[-1]).read_bytes()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / "uploads" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


async def test_same_bucket_layout_filters_and_file_names(
    platform: Platform, tmp_path: Path
) -> None:
    client = oscar(platform)
    r = await call(client.create_service, str(EXAMPLES / "shout" / "shout.yaml"))
    assert r.status_code == 201
    storage = await call(client.create_storage_client, "shout")

    # A .png does not pass the input filter; a .txt does; the result keeps the script's name.
    await call(
        storage.upload_file, "minio.default", str(write(tmp_path, "cat.png", "x")), "shout/in"
    )
    await call(
        storage.upload_file, "minio.default", str(write(tmp_path, "cat.txt", "meow")), "shout/in"
    )
    jobs = await succeeded(client, "shout", 1)
    assert await keys(storage, "shout/out") == ["out/cat.txt"]
    assert await fetch(storage, "shout/out/cat.txt", tmp_path) == b"MEOW"
    # the script saw the object under its own name
    (job,) = jobs
    logs = (await call(client.get_job_logs, "shout", job)).text
    assert "File available in " in logs and logs.split("File available in ")[1].split()[0].endswith(
        "/cat.txt"
    )
    # the output written to shout/out triggered nothing, and the .png never ran
    assert list((await call(client.list_jobs, "shout")).json()["jobs"]) == [job]
    assert await keys(storage, "shout/in") == ["in/cat.png", "in/cat.txt"]

    # synchronous and /job invocations of the same service
    r = await call(client.run_service, "shout", input="sync call")
    assert base64.b64decode(r.text) == b"SYNC CALL"
    r = await call(client.run_service, "shout", input="async call", async_call=True)
    assert r.status_code == 201
    await succeeded(client, "shout", 2)
    out = await keys(storage, "shout/out")
    assert len(out) == 2 and out[0] == "out/cat.txt" and out[1].startswith("out/event-file-")
    assert await fetch(storage, f"shout/{out[1]}", tmp_path) == b"ASYNC CALL"


async def test_several_outputs_each_with_its_filters(platform: Platform, tmp_path: Path) -> None:
    client = oscar(platform)
    assert (
        await call(client.create_service, str(LAYOUTS / "frames" / "frames.yaml"))
    ).status_code == 201
    storage = await call(client.create_storage_client, "frames")
    video = write(tmp_path, "clip.txt", "first\nsecond\nthird\n")
    await call(storage.upload_file, "minio.default", str(video), "frames/in")
    await succeeded(client, "frames", 1)
    assert await keys(storage, "frames/out") == [
        "out/frames/frame-00.txt",
        "out/frames/frame-01.txt",
        "out/frames/frame-02.txt",
        "out/meta/summaries/clip.json",
    ]
    assert await fetch(storage, "frames/out/frames/frame-01.txt", tmp_path) == b"second\n"
    summary = await fetch(storage, "frames/out/meta/summaries/clip.json", tmp_path)
    assert json.loads(summary) == {"source": "clip.txt", "frames": 3}
    # nothing but the input and the filtered outputs in the bucket (notes.log went nowhere)
    assert await keys(storage, "frames/in") == ["in/clip.txt"]


async def test_chained_services_receive_each_file(platform: Platform, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["import-fdl", str(LAYOUTS / "chain" / "chain.yaml"), "--url", platform.url]
    result = await call(runner.invoke, app, [*args, "--token", platform.admin_token])
    assert result.exit_code == 0, result.output
    client = oscar(platform)
    storage = await call(client.create_storage_client)
    text = write(tmp_path, "poem.txt", "one two\nthree four five\nsix\n")
    await call(storage.upload_file, "minio.default", str(text), "chain/in")
    await succeeded(client, "chain-split", 1)
    await succeeded(client, "chain-count", 3)  # one job per part, not one per zip
    assert await keys(storage, "chain/parts") == [
        "parts/part-00.part",
        "parts/part-01.part",
        "parts/part-02.part",
    ]
    assert await keys(storage, "chain/out") == [
        "out/part-00.part.count",
        "out/part-01.part.count",
        "out/part-02.part.count",
    ]
    counts = [await fetch(storage, f"chain/out/part-0{i}.part.count", tmp_path) for i in range(3)]
    assert counts == [b"2\n", b"3\n", b"1\n"]


async def test_a_loop_of_services_is_refused_naming_them(platform: Platform) -> None:
    runner = CliRunner()
    args = ["import-fdl", str(LAYOUTS / "loop" / "loop.yaml"), "--url", platform.url]
    result = await call(runner.invoke, app, [*args, "--token", platform.admin_token])
    assert result.exit_code == 1
    assert "ping -> pong -> ping" in " ".join(result.output.split())
    client = oscar(platform)
    assert (await call(client.list_services)).json() == []  # checked before any was created
    # one at a time, through the API: the second closes the loop and is refused
    services = read_fdl(LAYOUTS / "loop" / "loop.yaml")
    assert (await call(client.create_service, services[0])).status_code == 201
    with pytest.raises(Exception) as info:
        await call(client.create_service, services[1])
    assert info.value.response.status_code == 400  # type: ignore[attr-defined]
    assert "pong -> ping -> pong" in info.value.response.text  # type: ignore[attr-defined]
    assert [s["name"] for s in (await call(client.list_services)).json()] == ["ping"]


async def test_secrets_and_variables_in_upper_case(platform: Platform) -> None:
    client = oscar(platform)
    assert (
        await call(client.create_service, str(LAYOUTS / "secrets" / "secrets.yaml"))
    ).status_code == 201
    r = await call(client.run_service, "greeter", input=json.dumps({"name": "Ada"}))
    assert r.text == "Hello Ada, key ends in value\n"
    got = (await call(client.get_service, "greeter")).json()
    assert got["environment"]["variables"] == {"INPUT_TYPE": "json"}


async def test_buckets_api_status_and_presign(platform: Platform, tmp_path: Path) -> None:
    client = oscar(platform)
    assert (await call(client.create_bucket, "shared-data", "public")).status_code == 201
    buckets = {b["bucket_name"]: b for b in (await call(client.list_buckets)).json()}
    assert (
        buckets["shared-data"]["visibility"] == "public"
        and buckets["shared-data"]["owner"] == "admin"
    )
    r = await call(client.presign_bucket, "shared-data", "notes/a.txt", "upload", 60)
    up = r.json()
    assert up["method"] == "PUT"
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.put(up["url"], content=b"presigned")).status_code == 200
        down = (
            await call(client.presign_bucket, "shared-data", "notes/a.txt", "download", 60)
        ).json()
        r2 = await http.get(down["url"])
        assert r2.status_code == 200 and r2.content == b"presigned"
        assert (
            await http.get(down["url"].replace("mp-signature=", "mp-signature=0"))
        ).status_code == 403
    got = (await call(client.get_bucket, "shared-data")).json()
    assert [o["object_name"] for o in got["objects"]] == ["notes/a.txt"]
    assert got["objects"][0]["size_bytes"] == 9
    r = await call(client.update_bucket, "shared-data", "private")
    assert (await call(client.get_bucket, "shared-data")).json()["visibility"] == "private"
    status = (await call(client.get_cluster_status)).json()
    assert status["cluster"]["nodes_count"] == 1 and status["minio"]["buckets_count"] == 1
    assert status["minio"]["total_objects"] == 1
    assert (await call(client.delete_bucket, "shared-data")).status_code == 204
    assert (await call(client.list_buckets)).json() == []

    # a file above boto3's multipart threshold (8 MB) goes up in parts and comes back whole
    assert (await call(client.create_bucket, "big-data")).status_code == 201
    big = write(tmp_path, "big.bin", "")
    big.write_bytes(bytes(range(256)) * (9 * 4096))  # 9 MiB
    storage = await call(client.create_storage_client)
    await call(storage.upload_file, "minio.default", str(big), "big-data/blobs")
    assert await keys(storage, "big-data/blobs") == ["blobs/big.bin"]
    assert await fetch(storage, "big-data/blobs/big.bin", tmp_path) == big.read_bytes()

    # a service's buckets keep its settings and stay while it does
    assert (
        await call(client.create_service, str(EXAMPLES / "shout" / "shout.yaml"))
    ).status_code == 201
    with pytest.raises(Exception) as info:
        await call(client.update_bucket, "shout", "public")
    assert info.value.response.status_code == 403  # type: ignore[attr-defined]
    with pytest.raises(Exception) as info:
        await call(client.delete_bucket, "shout")
    assert info.value.response.status_code == 409  # type: ignore[attr-defined]
    assert "used by service shout" in info.value.response.text  # type: ignore[attr-defined]


async def test_mount_is_the_bucket_path_in_the_working_folder(
    platform: Platform, tmp_path: Path
) -> None:
    # Local buckets: the bucket's own folder, live. S3: a mirror synced both ways each pass.
    client = oscar(platform)
    assert (
        await call(client.create_service, str(LAYOUTS / "mount" / "mount.yaml"))
    ).status_code == 201
    storage = await call(client.create_storage_client, "stamp")
    stamp = write(tmp_path, "stamp.txt", "[v1] ")
    await call(storage.upload_file, "minio.default", str(stamp), "stamp-shared/config")
    if platform.settings.storage == "s3":
        mirrored = platform.settings.data_dir / "oscar-mounts" / "stamp" / "stamp-shared" / "config"

        async def mirrored_stamp() -> bool:
            return (mirrored / "stamp.txt").is_file()

        await eventually(mirrored_stamp, timeout=30, interval=0.1)
    await call(
        storage.upload_file, "minio.default", str(write(tmp_path, "a.txt", "alpha")), "stamp/in"
    )
    await succeeded(client, "stamp", 1)
    assert await fetch(storage, "stamp/out/a.txt", tmp_path) == b"[v1] alpha"

    # what the script wrote into the mount reaches the bucket
    async def written() -> list[str] | None:
        found = await keys(storage, "stamp-shared/config")
        return found if "config/seen/a.txt" in found else None

    assert await eventually(written, timeout=30, interval=0.2) == [
        "config/seen/a.txt",
        "config/stamp.txt",
    ]
    assert await fetch(storage, "stamp-shared/config/seen/a.txt", tmp_path) == b"a.txt\n"


async def test_volume_persists_across_invocations_and_replicas(platform: Platform) -> None:
    client = oscar(platform)
    fdl = str(LAYOUTS / "volume" / "volume.yaml")
    assert (await call(client.create_service, fdl)).status_code == 201
    assert (await call(client.run_service, "tally", input="one")).text == "1\n"
    assert (await call(client.run_service, "tally", input="two")).text == "2\n"
    # an update rolls the replicas over; the volume stays
    definition = (await call(client.get_service, "tally")).json()
    definition["environment"] = {"variables": {"ROUND": "2"}}
    assert (await call(client.update_service, "tally", definition)).status_code == 204
    assert (await call(client.run_service, "tally", input="three")).text == "3\n"
    volume = platform.settings.data_dir / "oscar-volumes" / "tally"
    assert (volume / "calls.log").read_text() == "one\ntwo\nthree\n"
    (listed,) = (await call(client.list_volumes)).json()
    assert listed["name"] == "tally" and listed["size"] == "1Gi"
    assert listed["creation_mode"] == "service" and listed["lifecycle_policy"] == "delete"
    assert listed["attachments"] == [{"service_name": "tally", "mount_path": "/data"}]
    assert (await call(client.remove_service, "tally")).status_code == 204
    assert not volume.exists()  # lifecycle_policy delete (the default for a sized volume)
    assert (await call(client.list_volumes)).json() == []

    # a volume made through the API, attached by name, kept after its service goes
    assert (await call(client.create_volume, "ledger", "2Gi")).status_code == 201
    named = {**definition, "name": "tally2", "volume": {"name": "ledger", "mount_path": "/data"}}
    named.pop("token", None)
    assert (await call(client.create_service, named)).status_code == 201
    assert (await call(client.run_service, "tally2", input="x")).text == "1\n"
    with pytest.raises(Exception) as info:
        await call(client.delete_volume, "ledger")
    assert info.value.response.status_code == 400  # type: ignore[attr-defined]
    assert "in use by tally2" in info.value.response.text  # type: ignore[attr-defined]
    assert (await call(client.remove_service, "tally2")).status_code == 204
    got = (await call(client.get_volume, "ledger")).json()
    assert got["attachments"] == [] and got["status"]["phase"] == "ready"
    ledger = platform.settings.data_dir / "oscar-volumes" / "ledger"
    assert (ledger / "calls.log").read_text() == "x\n"
    assert (await call(client.delete_volume, "ledger")).status_code == 204
    assert not ledger.exists()


async def test_the_storage_client_of_another_user_sees_only_what_it_may(tmp_path: Path) -> None:
    # Local buckets (with --storage s3 the client talks to that server with its own keys).
    platform = await start_platform(tmp_path / "data", **FAST)
    try:
        await _another_user(platform, tmp_path)
    finally:
        await platform.stop()


async def _another_user(platform: Platform, tmp_path: Path) -> None:
    from oscar_python.client import Client

    admin = oscar(platform)
    headers = {"authorization": f"Bearer {platform.admin_token}"}
    async with httpx.AsyncClient(base_url=platform.url, headers=headers, timeout=30) as http:
        assert (await http.post("/api/v1/users", json={"name": "ana"})).status_code == 201
        ana_token = (await http.post("/api/v1/tokens", json={"user": "ana"})).json()["token"]
    assert (await call(admin.create_bucket, "admin-private")).status_code == 201
    assert (await call(admin.create_bucket, "admin-public", "public")).status_code == 201
    mine = await call(admin.create_storage_client)
    note = write(tmp_path, "n.txt", "admin's")
    for bucket in ("admin-private", "admin-public"):
        await call(mine.upload_file, "minio.default", str(note), f"{bucket}/d")

    ana = Client(
        {
            "cluster_id": "oscar-cluster",
            "endpoint": platform.url,
            "user": "ana",
            "password": ana_token,
            "ssl": False,
        }
    )
    config = (await call(ana.get_cluster_config)).json()["minio_provider"]
    assert config["access_key"] == ana_token and config["endpoint"] == f"{platform.url}/s3"
    theirs = await call(ana.create_storage_client)
    assert await keys(theirs, "admin-public/d") == ["d/n.txt"]
    with pytest.raises(Exception) as info:
        await keys(theirs, "admin-private/d")
    assert "NoSuchBucket" in str(info.value)
    assert [b["bucket_name"] for b in (await call(ana.list_buckets)).json()] == ["admin-public"]
