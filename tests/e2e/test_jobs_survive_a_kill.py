"""Kill the platform (SIGKILL) with jobs queued and running; start it again: every job finishes
exactly once in the output bucket, none is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import FIXTURE_MODELS
from tests.e2e.test_cli import CLI, free_port, wait_http
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
N = 40


def start(data: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*CLI, "up", "--data-dir", str(data), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_jobs_finish_exactly_once_after_a_kill(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    up = start(data, port)
    try:
        wait_http(f"{url}/api/v1/health")
        token = (data / "admin.token").read_text().strip()
        http = httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30)
        r = http.post(
            "/api/v1/deployments",
            json={
                "name": "slow",
                "mode": "dedicated",
                "scale": {"replicas": 2},
                "model": {"path": str(FIXTURE_MODELS / "asyncecho")},
                "input": "slow-in",
                "output": "slow-out",
            },
        )
        assert r.status_code == 201, r.text
        for i in range(N):
            r = http.put(
                f"/api/v1/buckets/slow-in/objects/item-{i:03d}.json",
                content=json.dumps({"i": i, "delay": 0.4}).encode(),
                headers={"content-type": "application/json"},
            )
            assert r.status_code == 201

        def some_done_some_running() -> bool:
            counts = http.get("/api/v1/deployments/slow/jobs").json()["counts"]
            return counts.get("succeeded", 0) >= 4 and counts.get("running", 0) >= 1

        wait_until(some_done_some_running, timeout=90)
        os.kill(up.pid, signal.SIGKILL)
        up.wait(timeout=10)
        http.close()

        up = start(data, port)
        wait_http(f"{url}/api/v1/health")
        http = httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30)

        def all_succeeded() -> dict | None:
            data_ = http.get("/api/v1/deployments/slow/jobs", params={"limit": 1000}).json()
            return data_ if data_["counts"].get("succeeded", 0) == N else None

        final = wait_until(all_succeeded, timeout=90)
        assert final["counts"] == {"succeeded": N}
        assert len({j["input"]["key"] for j in final["jobs"]}) == N
        assert any(j["attempts"] >= 2 for j in final["jobs"]), "some job was interrupted"
        out = sorted((data / "buckets" / "slow-out").glob("*.json"))
        assert [p.name for p in out] == [f"item-{i:03d}.json.json" for i in range(N)]
        for i, path in enumerate(out):
            assert json.loads(path.read_text()) == {"i": i, "delay": 0.4}
        http.close()
    finally:
        if up.poll() is None:
            os.kill(up.pid, signal.SIGINT)
            up.wait(timeout=20)
