"""Two `modelplane up` processes on one real PostgreSQL store (buckets on moto's S3 server):
jobs run while the leader is SIGKILLed; the follower takes the lease within seconds, no job is
lost, none is completed twice (except one the dead leader had finished but not yet recorded),
and the deployment is still there and serving."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FIXTURE_MODELS
from tests.e2e.test_cli import CLI, free_port, wait_http
from tests.integration.s3server import (
    MOTO_MISSING,
    MOTO_MISSING_REASON,
    moto_endpoint,  # noqa: F401  (fixture)
)
from tests.polling import wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(MOTO_MISSING, reason=MOTO_MISSING_REASON),
]
N = 30
TTL = 2.0
S3_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


def start(data: Path, port: int, store: str, s3: str) -> subprocess.Popen[bytes]:
    args = [*CLI, "up", "--data-dir", str(data), "--port", str(port), "--store", store]
    args += ["--storage", "s3", "--s3-endpoint", s3, "--s3-region", "us-east-1"]
    args += ["--lease-ttl", str(TTL), "--job-lease", "3", "--watch-interval", "0.5"]
    # The ledger file is shared by the replicas of both processes: outside any one sandbox.
    args += ["--no-sandbox"]
    log = (data.parent / f"{data.name}.log").open("wb")
    return subprocess.Popen(
        args,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **S3_ENV},
    )


def client(url: str, data: Path) -> httpx.Client:
    wait_http(f"{url}/api/v1/health")
    token = (data / "admin.token").read_text().strip()
    return httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30)


def running(http: httpx.Client) -> set[int]:
    items = http.get("/api/v1/deployments/ledger/jobs", params={"state": "running"}).json()
    return {int(j["input"]["key"].split("-")[1].split(".")[0]) for j in items["jobs"]}


def test_leader_failover_by_sigkill_with_jobs(
    tmp_path: Path,
    postgres_url: str,
    moto_endpoint: str,  # noqa: F811
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        pa, pb = free_port(), free_port()
        a = start(tmp_path / "a", pa, postgres_url, moto_endpoint)
        procs.append(a)
        ha = client(f"http://127.0.0.1:{pa}", tmp_path / "a")
        assert ha.get("/api/v1/health").json()["role"] == "leader"
        b = start(tmp_path / "b", pb, postgres_url, moto_endpoint)
        procs.append(b)
        hb = client(f"http://127.0.0.1:{pb}", tmp_path / "b")
        assert hb.get("/api/v1/health").json()["role"] == "follower"

        r = hb.post(  # created through the follower
            "/api/v1/deployments",
            json={
                "name": "ledger",
                "mode": "dedicated",
                "scale": {"replicas": 2, "target_concurrency": 2},
                "model": {"path": str(FIXTURE_MODELS / "ledger")},
                "env": {"LEDGER": str(ledger)},
                "input": "ledger-in",
                "output": "ledger-out",
            },
        )
        assert r.status_code == 201, r.text
        for i in range(N):
            http = ha if i % 2 else hb  # uploads through both processes
            r = http.put(
                f"/api/v1/buckets/ledger-in/objects/item-{i:03d}.json",
                content=json.dumps({"i": i, "delay": 0.3}).encode(),
                headers={"content-type": "application/json"},
            )
            assert r.status_code == 201, r.text

        def some_done_some_running() -> bool:
            counts = hb.get("/api/v1/deployments/ledger/jobs").json()["counts"]
            return counts.get("succeeded", 0) >= 4 and counts.get("running", 0) >= 2

        wait_until(some_done_some_running, timeout=60)
        in_flight = running(hb)
        os.kill(a.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        a.wait(timeout=10)
        in_flight |= running(hb)
        ha.close()

        def b_leads() -> bool:
            return bool(hb.get("/api/v1/health").json()["role"] == "leader")

        wait_until(b_leads, timeout=TTL * 3)
        takeover = time.monotonic() - killed_at
        assert takeover < TTL + TTL / 3 + 1.5, f"took {takeover:.1f} s"

        def all_succeeded() -> dict[str, Any] | None:
            body = hb.get("/api/v1/deployments/ledger/jobs").json()
            return body if body["counts"] == {"succeeded": N} else None

        wait_until(all_succeeded, timeout=90)
        listing = hb.get("/api/v1/buckets/ledger-out/objects").json()
        assert len(listing["objects"]) == N
        done = [json.loads(line)["i"] for line in ledger.read_text().splitlines()]
        assert set(done) == set(range(N))
        twice = {i for i in done if done.count(i) > 1}
        assert twice <= in_flight, f"completed twice though not in flight at the kill: {twice}"

        names = [d["name"] for d in hb.get("/api/v1/deployments").json()]
        assert names == ["ledger"]  # no deployment lost
        r = hb.post("/api/v1/deployments/ledger/predict", json={"i": -1, "delay": 0})
        assert r.status_code == 200 and r.json()["i"] == -1
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
