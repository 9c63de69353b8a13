"""The official oscar-python client, unmodified, against a real platform."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.conftest import start_platform
from tests.polling import eventually

from modelplane.controlplane.platform import Platform

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("oscar_python") is None,
        reason="the official OSCAR client is not installed: pip install oscar-python==2.2.0",
    ),
]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "oscar"
FAST = {"watch_interval": 0.2, "autoscale_interval": 0.05, "stable_window": 2.0}


def client_for(platform: Platform, user: str = "admin", password: str | None = None) -> Any:
    from oscar_python.client import Client

    return Client(
        {
            "cluster_id": "modelplane",
            "endpoint": platform.url,
            "user": user,
            "password": password or platform.admin_token,
            "ssl": False,
        }
    )


def upper_service(**extra: Any) -> dict[str, Any]:
    return {
        "name": "upper",
        "image": "ghcr.io/grycap/alpine:latest",
        "script": (FIXTURES / "upper.sh").read_text(),
        "cpu": "0.5",
        "memory": "256Mi",
        "log_level": "DEBUG",
        "environment": {"variables": {"GREETING": "hello"}},
        "input": [{"storage_provider": "minio.default", "path": "upper-in/input"}],
        "output": [{"storage_provider": "minio.default", "path": "upper-out/output"}],
        **extra,
    }


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    p = await start_platform(tmp_path / "data", **FAST)
    try:
        yield p
    finally:
        await p.stop()


async def wait_job(client: Any, service: str, job: str | None = None) -> tuple[str, dict[str, Any]]:
    async def finished() -> tuple[str, dict[str, Any]] | None:
        jobs = (await asyncio.to_thread(client.list_jobs, service)).json()["jobs"]
        for name, info in jobs.items():
            if (job is None or name == job) and info["status"] in ("Succeeded", "Failed"):
                return name, info
        return None

    result: tuple[str, dict[str, Any]] = await eventually(finished, timeout=60, interval=0.2)
    return result


async def test_service_lifecycle_with_the_official_client(
    platform: Platform, tmp_path: Path
) -> None:
    client = client_for(platform)
    call = asyncio.to_thread

    r = await call(client.create_service, upper_service())
    assert r.status_code == 201
    listed = (await call(client.list_services)).json()
    assert [s["name"] for s in listed] == ["upper"]
    got = (await call(client.get_service, "upper")).json()
    assert got["image"] == "ghcr.io/grycap/alpine:latest" and got["log_level"] == "DEBUG"
    assert got["script"] == (FIXTURES / "upper.sh").read_text()
    assert got["token"] and got["owner"] == "admin" and got["storage_providers"] == {}
    with pytest.raises(ValueError, match="already present"):
        await call(client.create_service, upper_service())

    # synchronous: base64 in (the client encodes text), the output file base64 out
    r = await call(client.run_service, "upper", input="hello world")
    assert r.status_code == 200
    assert base64.b64decode(r.text) == b"HELLO WORLD"
    out_file = tmp_path / "result.txt"
    await call(client.run_service, "upper", input="again", output=str(out_file))
    assert out_file.read_text() == "AGAIN"

    # asynchronous: 201, then the job appears in the listing and its logs hold the script's
    r = await call(client.run_service, "upper", input="in the background", async_call=True)
    assert r.status_code == 201
    job, info = await wait_job(client, "upper", r.json()["jobName"])
    assert info["status"] == "Succeeded"
    assert {"creation_time", "start_time", "finish_time"} <= set(info)
    logs = (await call(client.get_job_logs, "upper", job)).text
    assert "SCRIPT: invoked with" in logs and "greeting: hello" in logs
    r = await call(client.remove_job, "upper", job)
    assert r.status_code == 204
    assert job not in (await call(client.list_jobs, "upper")).json()["jobs"]

    # update: the new environment reaches the replicas that roll over
    r = await call(
        client.update_service,
        "upper",
        upper_service(environment={"variables": {"GREETING": "bonjour"}}),
    )
    assert r.status_code == 204
    got = (await call(client.get_service, "upper")).json()
    assert got["environment"]["variables"] == {"GREETING": "bonjour"}

    async def greeted() -> bool:
        r = await call(client.run_service, "upper", input="x", async_call=True)
        name, _ = await wait_job(client, "upper", r.json()["jobName"])
        return "greeting: bonjour" in (await call(client.get_job_logs, "upper", name)).text

    await eventually(greeted, timeout=60, interval=0.5)

    r = await call(client.remove_service, "upper")
    assert r.status_code == 204
    with pytest.raises(Exception) as info:
        await call(client.get_service, "upper")
    assert info.value.response.status_code == 404  # type: ignore[attr-defined]
    assert (await call(client.list_services)).json() == []


async def test_plain_answers_tokens_and_paging(platform: Platform) -> None:
    client = client_for(platform)
    call = asyncio.to_thread
    greet = {
        "name": "greet",
        "image": "alpine",
        "script": (FIXTURES / "greet.sh").read_text(),
        "environment": {"variables": {"GREETING": "Hi"}},
    }
    await call(client.create_service, greet)
    token = (await call(client.get_service, "greet")).json()["token"]
    # a script that writes no file answers its own output, as plain text
    r = await call(client.run_service, "greet", input="Ana", token=token)
    assert r.text == "Hi, Ana!\n"
    # JSON goes to the script as it is
    r = await call(client.run_service, "greet", input={"k": "v"})
    assert r.status_code == 200  # requests form-encodes a dict; it arrives as raw text
    async with httpx.AsyncClient(base_url=platform.url, timeout=30) as http:
        r = await http.post(
            "/run/greet", content=b'{"k": 1}', headers={"authorization": f"Bearer {token}"}
        )
        assert r.text == 'Hi, {"k": 1}!\n'
        # the service token runs that service and nothing else
        assert (
            await http.get("/system/services", headers={"authorization": f"Bearer {token}"})
        ).status_code == 403
        assert (await http.post("/run/greet", content=b"x")).status_code == 401
        assert (
            await http.post("/run/greet", content=b"x", headers={"authorization": "Bearer nope"})
        ).status_code == 401
        for i in range(3):
            r = await http.post(
                "/job/greet",
                content=base64.b64encode(f"n{i}".encode()),
                headers={"authorization": f"Bearer {token}"},
            )
            assert r.status_code == 201
    # two scripts' outputs: a base64 zip
    two = {"name": "two", "image": "alpine", "script": (FIXTURES / "two.sh").read_text()}
    await call(client.create_service, two)
    r = await call(client.run_service, "two", input="payload")
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(base64.b64decode(r.text))) as z:
        assert sorted(z.namelist()) == ["a.txt", "sub/b.txt"]
        assert z.read("a.txt") == b"payload"
    # a failing script is a 500 naming its status
    fails = {"name": "fails", "image": "alpine", "script": (FIXTURES / "fails.sh").read_text()}
    await call(client.create_service, fails)
    with pytest.raises(Exception) as info:
        await call(client.run_service, "fails", input="x")
    assert info.value.response.status_code == 500  # type: ignore[attr-defined]
    assert "status 3" in info.value.response.text  # type: ignore[attr-defined]

    async def three_done() -> bool:
        jobs = (await call(client.list_jobs, "greet")).json()["jobs"]
        return len(jobs) == 3 and all(j["status"] == "Succeeded" for j in jobs.values())

    await eventually(three_done, timeout=60, interval=0.2)
    from modelplane.oscar import joblog

    old, joblog.PAGE_SIZE = joblog.PAGE_SIZE, 2
    try:
        first = (await call(client.list_jobs, "greet")).json()
        assert (
            len(first["jobs"]) == 2 and first["next_page"] == "2" and first["remaining_jobs"] == 1
        )
        second = (await call(client.list_jobs, "greet", first["next_page"])).json()
        assert len(second["jobs"]) == 1 and "next_page" not in second
    finally:
        joblog.PAGE_SIZE = old
    r = await call(client.remove_all_jobs, "greet")
    assert r.status_code == 204
    assert (await call(client.list_jobs, "greet")).json()["jobs"] == {}


async def test_cluster_endpoints_and_basic_auth(platform: Platform) -> None:
    client = client_for(platform)
    call = asyncio.to_thread
    assert (await call(client.health_check)).text == "Ok"
    info = (await call(client.get_cluster_info)).json()
    assert info["serverless_backend"]["name"] == "modelplane"
    assert "minio_provider" in (await call(client.get_cluster_config)).json()
    async with httpx.AsyncClient(base_url=platform.url, timeout=30) as http:
        assert (
            await http.get("/system/config/", auth=("admin", platform.admin_token or ""))
        ).status_code == 200
        assert (await http.get("/system/config", auth=("admin", "wrong"))).status_code == 401
        assert (
            await http.get("/system/info", auth=("someone", platform.admin_token or ""))
        ).status_code == 401
        assert (await http.get("/system/info")).status_code == 401
        assert (await http.get("/health")).text == "Ok"
    wrong = client_for(platform, password="mp_wrong")
    with pytest.raises(Exception) as excinfo:
        await call(wrong.list_services)
    assert excinfo.value.response.status_code == 401  # type: ignore[attr-defined]
