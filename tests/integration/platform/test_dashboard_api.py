"""The REST additions the dashboard stands on — traffic history, model upload and inspection,
job retry — and the dashboard's own files, on a real platform with real replicas."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from tests.integration.conftest import Harness
from tests.polling import eventually

pytestmark = pytest.mark.integration

FAST = {"history_interval": 0.1, "watch_interval": 0.2}


def zip_folder(folder: Path, top: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                z.write(path, f"{top}/{path.relative_to(folder)}")
    return buf.getvalue()


async def test_the_dashboard_is_served_at_the_root_with_a_strict_policy(harness: Harness) -> None:
    anonymous = harness.http.build_request("GET", "/", headers={"authorization": ""})
    r = await harness.http.send(anonymous)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/ui/app.js">' in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    js = await harness.http.get("/ui/app.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert "sessionStorage" in (await harness.http.get("/ui/api.js")).text
    for escape in ("/ui/../controlplane/app.py", "/ui/%2e%2e/controlplane/app.py", "/ui/nope.js"):
        assert (await harness.http.get(escape)).status_code == 404, escape


@pytest.mark.parametrize("platform_settings", [FAST])
async def test_traffic_history_has_rates_and_latency_and_the_list_summarises_it(
    harness: Harness, fixture_models: Path
) -> None:
    await harness.deploy("hist", fixture_models / "asyncecho")
    await harness.wait_ready("hist")
    for i in range(20):
        assert (await harness.predict("hist", {"i": i})).status_code == 200
    bad = await harness.http.post(
        "/api/v1/deployments/hist/predict",
        content=b"{nope",
        headers={"content-type": "application/json"},
    )
    assert bad.status_code == 400

    async def counted() -> list[dict[str, object]] | None:
        r = await harness.http.get("/api/v1/deployments/hist/metrics")
        assert r.status_code == 200, r.text
        points = r.json()["points"]
        return points if sum(p["requests"] for p in points) >= 21 else None

    points = await eventually(counted, timeout=10)
    busy = [p for p in points if p["requests"]]
    assert sum(p["rejected"] for p in points) == 1
    assert all(p["p99_ms"] is not None and p["p99_ms"] > 0 for p in busy)
    assert points[-1]["ready"] == points[-1]["desired"] == 1
    since = points[-1]["at"]
    later = await harness.http.get("/api/v1/deployments/hist/metrics", params={"since": since})
    assert all(p["at"] > since for p in later.json()["points"])
    (row,) = (await harness.http.get("/api/v1/deployments")).json()
    assert row["traffic"]["requests_per_min"] > 0
    assert row["traffic"]["p99_ms"] is not None


@pytest.mark.parametrize("platform_settings", [FAST])
async def test_a_model_uploaded_as_a_zip_deploys_and_answers(
    harness: Harness, fixture_models: Path
) -> None:
    r = await harness.http.post(
        "/api/v1/models",
        content=zip_folder(fixture_models / "asyncecho", "my-echo"),
        headers={"content-type": "application/zip"},
    )
    assert r.status_code == 201, r.text
    found = r.json()
    assert found["loader"] == "python"
    assert Path(found["path"]).name == "my-echo"
    assert Path(found["path"]).is_relative_to(harness.platform.settings.uploads_dir / "admin")
    assert found["metadata"]["name"] == "asyncecho"
    await harness.deploy(found["suggested_name"], Path(found["path"]))
    await harness.wait_ready(found["suggested_name"])
    answer = await harness.predict(found["suggested_name"], {"hello": 1})
    assert answer.status_code == 200, answer.text

    # someone else may not deploy that upload (the sandbox lets replicas see uploads)
    assert (await harness.http.post("/api/v1/users", json={"name": "eve"})).status_code == 201
    r = await harness.http.post("/api/v1/tokens", json={"user": "eve"})
    eve = {"authorization": f"Bearer {r.json()['token']}"}
    stolen = {"name": "stolen", "model": {"path": found["path"]}, "mode": "dedicated"}
    r = await harness.http.post("/api/v1/deployments", json=stolen, headers=eve)
    assert (r.status_code, r.json()["error"]) == (422, "invalid_spec")
    assert "belongs to another user" in r.json()["message"]

    wrong = await harness.http.post(
        "/api/v1/models", content=b"not a zip", headers={"content-type": "application/zip"}
    )
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_input")
    assert "not a zip" in wrong.json()["message"]
    typed = await harness.http.post("/api/v1/models", json={"path": "/"})
    assert typed.status_code == 400 and "application/zip" in typed.json()["message"]


async def test_inspecting_a_folder_says_what_it_is_or_why_not(
    harness: Harness, fixture_models: Path, tmp_path: Path
) -> None:
    r = await harness.http.post(
        "/api/v1/models/inspect", json={"path": str(fixture_models / "asyncecho")}
    )
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["name"] == "asyncecho"
    missing = await harness.http.post("/api/v1/models/inspect", json={"path": str(tmp_path / "x")})
    assert missing.status_code == 422
    assert "is not a folder" in missing.json()["message"]
    empty = await harness.http.post("/api/v1/models/inspect", json={"path": str(tmp_path)})
    assert empty.status_code == 422
    assert "modelplane.yaml" in empty.json()["message"]


@pytest.mark.parametrize("platform_settings", [FAST])
async def test_a_failed_job_runs_again_when_retried(harness: Harness, fixture_models: Path) -> None:
    body = {
        "name": "flaky",
        "model": {"path": str(fixture_models / "faulty")},
        "mode": "dedicated",
        "input": "flaky-in",
        "output": "flaky-out",
    }
    assert (await harness.http.post("/api/v1/deployments", json=body)).status_code == 201
    r = await harness.http.put(
        "/api/v1/buckets/flaky-in/objects/bad.json",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 201, r.text
    job_id = r.json()["jobs"][0]["id"]
    url = f"/api/v1/deployments/flaky/jobs/{job_id}"

    async def failed() -> dict[str, object] | None:
        job = (await harness.http.get(url)).json()
        return job if job["state"] == "failed" else None

    first = await eventually(failed, timeout=30)
    assert first["attempts"] == 1 and first["error"]
    again = await harness.http.post(f"{url}/retry")
    assert again.status_code == 200, again.text
    # back in the queue at once (the runner may already have run it again by now), so the next
    # failure is a new run: attempts start afresh (1, not 2) and it finished later
    second = await eventually(failed, timeout=30)
    assert second["attempts"] == 1
    assert second["finished_at"] > first["finished_at"]  # type: ignore[operator]

    r = await harness.http.put(
        "/api/v1/buckets/flaky-in/objects/good.json",
        content=b"{}",
        headers={"content-type": "application/json"},
    )
    good = r.json()["jobs"][0]["id"]

    async def succeeded() -> bool:
        job = (await harness.http.get(f"/api/v1/deployments/flaky/jobs/{good}")).json()
        return job["state"] == "succeeded"

    await eventually(succeeded, timeout=30)
    refused = await harness.http.post(f"/api/v1/deployments/flaky/jobs/{good}/retry")
    assert (refused.status_code, refused.json()["error"]) == (409, "conflict")
