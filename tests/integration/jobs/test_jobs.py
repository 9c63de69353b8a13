"""Asynchronous predictions through buckets, on a real platform with real replicas."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.conftest import Harness
from tests.polling import eventually

from modelplane.testing.clock import FakeClock

pytestmark = pytest.mark.integration

FAST = {"stable_window": 2.0, "autoscale_interval": 0.05, "watch_interval": 0.2}


async def deploy_async(
    h: Harness, name: str, path: Path, mode: str = "dedicated", **extra: Any
) -> None:
    body = {
        "name": name,
        "model": {"path": str(path)},
        "mode": mode,
        "input": f"{name}-in",
        "output": f"{name}-out",
        **extra,
    }
    r = await h.http.post("/api/v1/deployments", json=body)
    assert r.status_code == 201, r.text


async def jobs_of(h: Harness, name: str, **params: Any) -> dict[str, Any]:
    r = await h.http.get(f"/api/v1/deployments/{name}/jobs", params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def all_finished(h: Harness, name: str, n: int) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        data = await jobs_of(h, name)
        done = sum(data["counts"].get(s, 0) for s in ("succeeded", "failed"))
        return data if done >= n else None

    return await eventually(check, timeout=60)


@pytest.mark.parametrize("platform_settings", [FAST])
async def test_uploads_become_jobs_and_results_land_in_the_output_bucket(
    harness: Harness, fixture_models: Path
) -> None:
    await deploy_async(harness, "rev", fixture_models / "asyncecho")
    files = [("files", (f"note-{i}.txt", f"hello {i}".encode(), "text/plain")) for i in range(5)]
    r = await harness.http.post(
        "/api/v1/deployments/rev/jobs", files=files, data={"prefix": "batch1/"}
    )
    assert r.status_code == 201, r.text
    created = r.json()["jobs"]
    assert [j["input"]["key"] for j in created] == [f"batch1/note-{i}.txt" for i in range(5)]
    data = await all_finished(harness, "rev", 5)
    assert data["counts"] == {"succeeded": 5}
    for job in data["jobs"]:
        assert job["output"]["key"] == job["input"]["key"] + ".txt"
        assert job["duration_seconds"] is not None and job["attempts"] == 1
        r = await harness.http.get(f"/api/v1/deployments/rev/jobs/{job['id']}/result")
        i = job["input"]["key"].split("-")[1].split(".")[0]
        assert r.content == f"hello {i}".encode()[::-1]
    objects = (await harness.http.get("/api/v1/buckets/rev-out/objects")).json()["objects"]
    assert sorted(o["key"] for o in objects) == [f"batch1/note-{i}.txt.txt" for i in range(5)]


@pytest.mark.parametrize("platform_settings", [FAST])
async def test_bucket_put_and_files_dropped_in_the_folder_both_trigger(
    harness: Harness, examples: Path, tmp_path: Path
) -> None:
    await deploy_async(harness, "echo", examples / "echo")
    r = await harness.http.put(
        "/api/v1/buckets/echo-in/objects/a/one.json",
        content=b'{"n": 1}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 201 and len(r.json()["jobs"]) == 1
    # Straight into the bucket's folder, as another program on this machine would.
    folder = harness.platform.settings.buckets_dir / "echo-in"
    (folder / "two.json").write_bytes(b'{"n": 2}')
    data = await all_finished(harness, "echo", 2)
    assert data["counts"] == {"succeeded": 2}
    r = await harness.http.get("/api/v1/buckets/echo-out/objects/two.json.json")
    assert r.json() == {"n": 2}


@pytest.mark.parametrize("platform_settings", [FAST])
async def test_bad_inputs_fail_once_and_crashes_retry_to_a_dead_letter(
    harness: Harness, fixture_models: Path
) -> None:
    await deploy_async(harness, "faulty", fixture_models / "faulty")
    await harness.wait_ready("faulty")
    put = harness.http.put
    await put(
        "/api/v1/buckets/faulty-in/objects/bad.json",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    await put(
        "/api/v1/buckets/faulty-in/objects/raise.json",
        content=b'{"raise": "nope"}',
        headers={"content-type": "application/json"},
    )
    await put(
        "/api/v1/buckets/faulty-in/objects/good.json",
        content=b"{}",
        headers={"content-type": "application/json"},
    )
    data = await all_finished(harness, "faulty", 3)
    by_key = {j["input"]["key"]: j for j in data["jobs"]}
    assert by_key["good.json"]["state"] == "succeeded"
    bad = by_key["bad.json"]
    assert bad["state"] == "failed" and bad["attempts"] == 1 and "not valid JSON" in bad["error"]
    dead = by_key["raise.json"]
    assert dead["state"] == "failed" and dead["attempts"] == 3
    assert "ValueError: nope" in dead["error"]
    failed = await jobs_of(harness, "faulty", state="failed")
    assert {j["input"]["key"] for j in failed["jobs"]} == {"bad.json", "raise.json"}


@pytest.mark.parametrize("platform_settings", [{**FAST, "clock": FakeClock(wall=time.time())}])
async def test_a_serverless_deployment_scales_up_for_jobs_and_back_to_zero(
    harness: Harness, examples: Path
) -> None:
    await deploy_async(
        harness, "echo", examples / "echo", mode="serverless", scale={"idle_timeout": 600, "max": 2}
    )
    assert (await harness.status("echo"))["status"]["replicas"] == []
    files = [
        ("files", (f"{i}.json", json.dumps({"i": i}).encode(), "application/json"))
        for i in range(10)
    ]
    await harness.http.post("/api/v1/deployments/echo/jobs", files=files)
    data = await all_finished(harness, "echo", 10)
    assert data["counts"] == {"succeeded": 10}
    await harness.idle_to_zero("echo")  # its idle timeout, on the platform's fake clock

    async def at_zero() -> bool:
        return not (await harness.status("echo"))["status"]["replicas"]

    await eventually(at_zero)
    cold = (await harness.status("echo"))["status"]["cold_starts"]
    assert len(cold) >= 1


@pytest.mark.parametrize(
    "key",
    # Dots percent-encoded, or the HTTP client would normalise them away before sending.
    [
        "%2E%2E/escape.json",
        "a/%2E%2E/%2E%2E/escape.json",
        "a//b.json",
        "%2E/x.json",
        "bad%00name.json",
    ],
)
async def test_path_tricks_in_object_keys_are_refused(
    harness: Harness, examples: Path, key: str
) -> None:
    await deploy_async(harness, "echo", examples / "echo")
    r = await harness.http.put(f"/api/v1/buckets/echo-in/objects/{key}", content=b"{}")
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_input"
    outside = list(harness.platform.settings.data_dir.rglob("escape.json"))
    assert outside == []


async def test_jobs_need_buckets_and_unknown_things_are_404(
    harness: Harness, examples: Path
) -> None:
    await harness.deploy("plain", examples / "echo")
    r = await harness.http.post(
        "/api/v1/deployments/plain/jobs", files=[("files", ("a.json", b"{}", "application/json"))]
    )
    assert r.status_code == 400 and "no input and output buckets" in r.json()["message"]
    assert (await harness.http.get("/api/v1/deployments/plain/jobs/nope")).status_code == 404
    assert (await harness.http.get("/api/v1/buckets/nobody/objects")).status_code == 404
    r = await harness.http.post(
        "/api/v1/deployments",
        json={
            "name": "same",
            "model": {"path": str(examples / "echo")},
            "input": "x1",
            "output": "x1",
        },
    )
    assert r.status_code == 422 and "different buckets" in r.json()["message"]


async def test_s3_backend_end_to_end(
    tmp_path: Path, examples: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Buckets on moto's standalone S3 server (loopback); objects written with boto3 directly."""
    import boto3
    from tests.integration.conftest import start_platform

    for var, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(var, value)
    platform = await start_platform(
        tmp_path / "data", storage="s3", s3_endpoint=moto_endpoint, s3_region="us-east-1", **FAST
    )
    h = Harness(platform)
    try:
        await deploy_async(h, "s3echo", examples / "echo")
        s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
        for i in range(3):
            s3.put_object(
                Bucket="s3echo-in",
                Key=f"direct/{i}.json",
                Body=json.dumps({"i": i}).encode(),
                ContentType="application/json",
            )
        data = await all_finished(h, "s3echo", 3)
        assert data["counts"] == {"succeeded": 3}
        body = s3.get_object(Bucket="s3echo-out", Key="direct/2.json.json")["Body"].read()
        assert json.loads(body) == {"i": 2}
    finally:
        await h.http.aclose()
        await platform.stop()


async def test_someone_elses_bucket_is_not_found(harness: Harness) -> None:
    r = await harness.http.post("/api/v1/buckets", json={"name": "mine"})
    assert r.status_code == 201
    r = await harness.http.post("/api/v1/buckets", json={"name": "Bad_Name"})
    assert r.status_code == 400
    async with httpx.AsyncClient(base_url=harness.platform.url) as anon:
        assert (await anon.get("/api/v1/buckets/mine/objects")).status_code == 401


async def test_uploads_on_the_fast_path_answer_as_the_api_documents(
    harness: Harness, examples: Path
) -> None:
    await deploy_async(harness, "echo", examples / "echo")
    # Percent-encoded keys are decoded once, as FastAPI does.
    r = await harness.http.put(
        "/api/v1/buckets/echo-in/objects/dir%20one/caf%C3%A9.json",
        content=b'{"n": 1}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["object"]["key"] == "dir one/café.json" and body["object"]["size"] == 8
    assert body["object"]["content_type"] == "application/json"
    assert [j["input"]["key"] for j in body["jobs"]] == ["dir one/café.json"]
    # A query string is not taken by the fast path: the API's own answer.
    r = await harness.http.put("/api/v1/buckets/echo-in/objects/q.json?x=1", content=b"{}")
    assert r.status_code == 201 and r.json()["object"]["key"] == "q.json"
    bad = {"authorization": "Bearer nope"}
    r = await harness.http.put("/api/v1/buckets/echo-in/objects/a.json", content=b"{}", headers=bad)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"] == "unauthenticated"
    # An inference token predicts; it does not write into buckets.
    scoped = (await harness.http.post("/api/v1/deployments/echo/tokens", json={})).json()["token"]
    r = await harness.http.put(
        "/api/v1/buckets/echo-in/objects/a.json",
        content=b"{}",
        headers={"authorization": f"Bearer {scoped}"},
    )
    assert r.status_code == 404, r.text
