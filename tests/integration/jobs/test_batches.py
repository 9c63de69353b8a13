"""Server-side batch runs on a real platform: folders and buckets, failures, retry, cancel,
one-off deployments, and who may read what."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import Harness, start_platform
from tests.polling import eventually

from modelplane.testing.clock import FakeClock

pytestmark = pytest.mark.integration

FAST = {"stable_window": 2.0, "autoscale_interval": 0.05}
FINISHED = ("succeeded", "failed", "cancelled")


async def start(h: Harness, **body: Any) -> dict[str, Any]:
    r = await h.http.post("/api/v1/batches", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def finished(h: Harness, batch_id: str, timeout: float = 60) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        r = await h.http.get(f"/api/v1/batches/{batch_id}")
        assert r.status_code == 200, r.text
        run = r.json()
        # A cancelled run is cancelled at once, and finished once its inputs in flight are.
        return run if run["state"] in FINISHED and run["finished_at"] else None

    return await eventually(check, timeout=timeout)


def dataset(folder: Path, n: int) -> None:
    (folder / "sub").mkdir(parents=True)
    for i in range(n):
        (folder / ("sub" if i % 2 else "") / f"{i}.json").write_text(json.dumps({"i": i}))


@pytest.mark.parametrize("platform_settings", [FAST])
async def test_a_folder_run_lists_its_failures_and_a_retry_finishes_it(
    harness: Harness, examples: Path, tmp_path: Path
) -> None:
    await harness.deploy("echo", examples / "echo", scale={"replicas": 2})
    src, dst = tmp_path / "in", tmp_path / "out"
    dataset(src, 120)
    (src / "broken.json").write_text("{oops")
    run = await start(harness, deployment="echo", input=str(src), output=str(dst))
    assert run["state"] == "queued" and run["ephemeral"] is False
    run = await finished(harness, run["id"])
    assert run["state"] == "failed"
    assert (run["total"], run["done"], run["failed"], run["skipped"]) == (121, 120, 1, 0)
    [failure] = run["failures"]
    assert failure["name"] == "broken.json" and failure["error"].startswith("400: ")
    assert failure["attempts"] == 1  # a 4xx is the input's fault: not retried
    assert json.loads((dst / "sub" / "1.json.json").read_text()) == {"i": 1}
    assert len(list(dst.rglob("*.json"))) == 120

    # Fix the input, lose some results (an interrupted copy), retry: only those are computed.
    (src / "broken.json").write_text('{"fixed": true}')
    for i in range(0, 10, 2):
        (dst / f"{i}.json.json").unlink()
    r = await harness.http.post(f"/api/v1/batches/{run['id']}/retry")
    assert r.status_code == 200, r.text
    run = await finished(harness, run["id"])
    assert run["state"] == "succeeded", run
    assert (run["total"], run["done"], run["failed"]) == (121, 121, 0)
    assert json.loads((dst / "broken.json.json").read_text()) == {"fixed": True}
    assert len(list(dst.rglob("*.json"))) == 121  # every input one result, none twice


@pytest.mark.parametrize("platform_settings", [FAST])
async def test_bucket_prefix_to_bucket_prefix(harness: Harness, examples: Path) -> None:
    await harness.deploy("echo", examples / "echo")
    r = await harness.http.post("/api/v1/buckets", json={"name": "data"})
    assert r.status_code == 201, r.text
    for i in range(30):
        r = await harness.http.put(
            f"/api/v1/buckets/data/objects/in/{i}.json", content=json.dumps({"n": i}).encode()
        )
        assert r.status_code == 201, r.text
    await harness.http.put("/api/v1/buckets/data/objects/other/x.json", content=b"{}")
    run = await start(harness, deployment="echo", input="data/in", output="results/run1")
    run = await finished(harness, run["id"])
    assert (run["state"], run["done"], run["total"]) == ("succeeded", 30, 30)
    objects = (await harness.http.get("/api/v1/buckets/results/objects")).json()["objects"]
    assert sorted(o["key"] for o in objects) == sorted(f"run1/{i}.json.json" for i in range(30))
    r = await harness.http.get("/api/v1/buckets/results/objects/run1/7.json.json")
    assert r.json() == {"n": 7}


@pytest.mark.parametrize("platform_settings", [FAST])
async def test_a_cancelled_run_stops_taking_inputs(
    harness: Harness, fixture_models: Path, tmp_path: Path
) -> None:
    await harness.deploy("slow", fixture_models / "faulty")
    src = tmp_path / "in"
    src.mkdir()
    for i in range(200):
        (src / f"{i}.json").write_text(json.dumps({"sleep": 0.05}))
    run = await start(
        harness, deployment="slow", input=str(src), output=str(tmp_path / "out"), concurrency=2
    )

    async def some_done() -> bool:
        return (await harness.http.get(f"/api/v1/batches/{run['id']}")).json()["done"] >= 2

    await eventually(some_done)
    r = await harness.http.delete(f"/api/v1/batches/{run['id']}")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    run = await finished(harness, run["id"])
    assert run["state"] == "cancelled" and run["done"] < 200


@pytest.mark.parametrize("platform_settings", [FAST])
async def test_a_model_folder_run_brings_its_own_deployment_and_removes_it(
    harness: Harness, examples: Path, fixture_models: Path, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    dataset(src, 20)
    run = await start(
        harness,
        model={"path": str(examples / "echo")},
        replicas=2,
        input=str(src),
        output=str(tmp_path / "out"),
    )
    assert run["ephemeral"] is True and run["deployment"].startswith("batch-")
    run = await finished(harness, run["id"])
    assert (run["state"], run["done"]) == ("succeeded", 20)
    assert run["replica_seconds"] > 0 and run["gpu_seconds"] == 0
    names = [d["name"] for d in (await harness.http.get("/api/v1/deployments")).json()]
    assert run["deployment"] not in names

    # Removed also when the run fails: a model that cannot load.
    run = await start(
        harness,
        model={"path": str(fixture_models / "broken")},
        input=str(src),
        output=str(tmp_path / "out2"),
    )
    run = await finished(harness, run["id"], timeout=90)
    assert run["state"] == "failed" and run["failed"] == 20
    assert "load" in run["failures"][0]["error"]
    names = [d["name"] for d in (await harness.http.get("/api/v1/deployments")).json()]
    assert run["deployment"] not in names


async def test_bad_requests_are_refused_with_the_field_named(
    harness: Harness, examples: Path, tmp_path: Path
) -> None:
    await harness.deploy("echo", examples / "echo")
    cases = [
        ({"input": "a", "output": "b"}, 422, "either deployment or model"),
        (
            {"deployment": "echo", "model": {"path": "/x"}, "input": "a", "output": "b"},
            422,
            "either deployment or model",
        ),
        ({"deployment": "echo", "input": "a", "output": "b", "concurrency": 0}, 422, "concurrency"),
        ({"deployment": "nope", "input": "a", "output": "b"}, 404, "nope"),
        (
            {"deployment": "echo", "input": str(tmp_path / "missing"), "output": "b"},
            400,
            "not a folder",
        ),
        ({"deployment": "echo", "input": "no-such-bucket/x", "output": "b"}, 404, "no-such-bucket"),
        ({"deployment": "echo", "input": "ftp://x/y", "output": "b"}, 400, "unsupported scheme"),
    ]
    for body, status, words in cases:
        r = await harness.http.post("/api/v1/batches", json=body)
        assert r.status_code == status, (body, r.text)
        assert words in r.text, (body, r.text)
    assert (await harness.http.get("/api/v1/batches/0123")).status_code == 404


async def test_users_see_only_their_runs_and_never_the_platforms_folders(
    harness: Harness, examples: Path, tmp_path: Path
) -> None:
    h = harness.http
    assert (await h.post("/api/v1/users", json={"name": "ann"})).status_code == 201
    token = (await h.post("/api/v1/tokens", json={"user": "ann"})).json()["token"]
    ann = {"authorization": f"Bearer {token}"}
    r = await h.post(
        "/api/v1/deployments",
        headers=ann,
        json={"name": "anns", "model": {"path": str(examples / "echo")}},
    )
    assert r.status_code == 201, r.text
    src = tmp_path / "in"
    dataset(src, 2)
    r = await h.post(
        "/api/v1/batches",
        headers=ann,
        json={"deployment": "anns", "input": str(src), "output": "ann-out"},
    )
    assert r.status_code == 403 and "for admins" in r.json()["message"]
    await h.post("/api/v1/buckets", json={"name": "admins-data"})
    r = await h.post(
        "/api/v1/batches",
        headers=ann,
        json={"deployment": "anns", "input": "admins-data", "output": "ann-out"},
    )
    assert r.status_code == 404
    admin_run = await start(harness, deployment="anns", input=str(src), output=str(tmp_path / "o"))
    r = await h.get(f"/api/v1/batches/{admin_run['id']}", headers=ann)
    assert r.status_code == 404
    assert (await h.get("/api/v1/batches", headers=ann)).json() == {"batches": []}


async def test_a_run_resumes_after_a_restart_where_it_stopped(
    tmp_path: Path, fixture_models: Path
) -> None:
    data = tmp_path / "data"
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(60):
        (src / f"{i:02}.json").write_text(json.dumps({"sleep": 0.02, "i": i}))
    platform = await start_platform(data, **FAST)
    h = Harness(platform)
    try:
        await h.deploy("slow", fixture_models / "faulty")
        run = await start(h, deployment="slow", input=str(src), output=str(dst), concurrency=2)

        async def some_done() -> bool:
            return (await h.http.get(f"/api/v1/batches/{run['id']}")).json()["done"] >= 5

        await eventually(some_done)
    finally:
        await h.http.aclose()
        await platform.stop()
    assert 5 <= len(list(dst.iterdir())) < 60
    platform = await start_platform(data, **FAST)
    h = Harness(platform)
    try:
        run = await finished(h, run["id"])
        assert (run["state"], run["done"], run["total"]) == ("succeeded", 60, 60)
        assert sorted(p.name for p in dst.iterdir()) == [f"{i:02}.json.json" for i in range(60)]
    finally:
        await h.http.aclose()
        await platform.stop()


@pytest.mark.parametrize("platform_settings", [{**FAST, "clock": FakeClock(wall=time.time())}])
async def test_a_serverless_deployment_scales_up_for_a_run_and_back_to_zero(
    harness: Harness, fixture_models: Path, tmp_path: Path
) -> None:
    await harness.deploy(
        "lazy",
        fixture_models / "faulty",
        mode="serverless",
        scale={"min": 0, "max": 2, "target_concurrency": 1, "idle_timeout": 600},
    )
    src = tmp_path / "in"
    src.mkdir()
    for i in range(150):
        (src / f"{i:03}.json").write_text(json.dumps({"sleep": 0.02}))
    run = await start(
        harness, deployment="lazy", input=str(src), output=str(tmp_path / "out"), concurrency=8
    )
    most = 0

    async def at_max() -> bool:
        nonlocal most
        most = max(most, (await harness.status("lazy"))["status"]["ready"])
        return most >= 2

    await eventually(at_max, timeout=60)
    run = await finished(harness, run["id"])
    assert (run["state"], run["done"]) == ("succeeded", 150)
    await harness.idle_to_zero("lazy")  # its idle timeout, on the platform's fake clock

    async def at_zero() -> bool:
        st = (await harness.status("lazy"))["status"]
        return st["ready"] == 0 and st["starting"] == 0

    await eventually(at_zero, timeout=60)


@pytest.mark.parametrize("platform_settings", [FAST])
async def test_a_follower_that_waits_is_answered_when_the_run_ends(
    harness: Harness, fixture_models: Path, tmp_path: Path
) -> None:
    """``GET …?wait=S`` holds the answer until the run has finished (or S passed), so a
    follower learns of the end without polling."""
    await harness.deploy("slow", fixture_models / "faulty")
    src = tmp_path / "in"
    src.mkdir()
    for i in range(20):
        (src / f"{i}.json").write_text(json.dumps({"sleep": 0.05}))
    run = await start(
        harness, deployment="slow", input=str(src), output=str(tmp_path / "out"), concurrency=1
    )
    url = f"/api/v1/batches/{run['id']}"
    # 20 inputs one at a time take a second at least: a short hold ends with the run going on
    held = (await harness.http.get(url, params={"wait": 0.05})).json()
    assert held["state"] in ("queued", "running") and held["finished_at"] is None
    # a long hold is answered by the run's end, well before the hold is over
    r = await harness.http.get(url, params={"wait": 60}, timeout=90)
    assert r.status_code == 200, r.text
    done = r.json()
    assert (done["state"], done["done"]) == ("succeeded", 20) and done["finished_at"]
    # a finished run is answered at once, whatever the hold
    assert (await harness.http.get(url, params={"wait": 60})).json()["id"] == run["id"]
    r = await harness.http.get(url, params={"wait": 61})
    assert r.status_code == 422 and "wait" in r.text
    r = await harness.http.get("/api/v1/batches/nope", params={"wait": 5})
    assert r.status_code == 404
