"""The platform losing its Ray cluster's head: a `modelplane up --backend ray` process on a real
local cluster (head + one worker, in a process of its own so that no driver but the platform is
joined to it) has two replicas serving; the head's GCS is SIGKILLed. The platform keeps running,
keeps answering predictions through the replicas it still reaches (their data links are TCP
connections to our gateway) and says ``degraded`` with the reason in ``/api/v1/health``.

Without GCS fault tolerance Ray's worker nodes end themselves after
``gcs_rpc_server_reconnect_timeout_s`` (60 s by default), and their replicas with them: the test
checks well within that window."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import EXAMPLES, ROOT
from tests.e2e.test_cli import CLI, free_port, wait_http
from tests.polling import wait_until
from tests.raycluster import RAY_MISSING, RAY_MISSING_REASON

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.ray,
    pytest.mark.skipif(RAY_MISSING, reason=RAY_MISSING_REASON),
    pytest.mark.timeout(300),
]


def _end(proc: subprocess.Popen[Any], timeout: float) -> None:
    """Ask, then end the process group this test started."""
    if proc.poll() is None:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture
def detached_cluster() -> Iterator[dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.raycluster"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, "the Ray cluster did not start"
        yield json.loads(line)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        _end(proc, 30)


def test_the_head_lost_keeps_the_replicas_serving_and_health_says_degraded(
    tmp_path: Path, detached_cluster: dict[str, Any]
) -> None:
    data, port = tmp_path / "data", free_port()
    args = [*CLI, "up", "--data-dir", str(data), "--port", str(port), "--no-sandbox"]
    args += ["--backend", "ray", "--ray-address", detached_cluster["address"]]
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/api/v1/health", timeout=120)
        token = (data / "admin.token").read_text().strip()
        http = httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30)
        body = {
            "name": "echo",
            "model": {"path": str(EXAMPLES / "echo")},
            "mode": "dedicated",
            "scale": {"replicas": 2},
            "resources": {"cpu": 0.5, "memory": "256Mi"},
        }
        assert http.post("/api/v1/deployments", json=body).status_code == 201
        wait_until(
            lambda: http.get("/api/v1/deployments/echo").json()["status"]["ready"] == 2,
            timeout=120,
        )
        health = http.get("/api/v1/health").json()
        assert health["backend"]["kind"] == "ray" and health["backend"]["state"] == "ok"

        os.kill(detached_cluster["gcs_pid"], signal.SIGKILL)

        def degraded() -> dict[str, Any] | None:
            backend = http.get("/api/v1/health").json()["backend"]
            return backend if backend["state"] == "degraded" else None

        state = wait_until(degraded, timeout=30)
        address = detached_cluster["address"]
        assert f"the Ray cluster at {address} does not answer" in state["detail"]
        assert "replicas already connected keep serving" in state["detail"]
        answers = [http.post("/api/v1/deployments/echo/predict", json={"i": i}) for i in range(20)]
        assert [r.status_code for r in answers] == [200] * 20
        assert [r.json()["i"] for r in answers] == list(range(20))
        assert http.get("/api/v1/deployments/echo").json()["status"]["ready"] == 2
        assert up.poll() is None, "the platform is still running"
    finally:
        up.send_signal(signal.SIGTERM)
        _end(up, 30)
