"""Kill the platform (SIGKILL) in the middle of a batch run started from the CLI; start it again:
the run resumes by itself and every input has exactly one result, none lost."""

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
from tests.e2e.test_jobs_survive_a_kill import start, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
N = 300


def test_a_batch_run_resumes_after_a_kill_with_every_result_once(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    src, dst = tmp_path / "dataset", tmp_path / "predictions"
    src.mkdir()
    for i in range(N):
        (src / f"{i:03d}.json").write_text(json.dumps({"i": i, "delay": 0.02}))
    up = start(data, port)
    try:
        wait_http(f"{url}/api/v1/health")
        token = (data / "admin.token").read_text().strip()
        env = {**os.environ, "MODELPLANE_URL": url, "MODELPLANE_TOKEN": token}
        model = str(FIXTURE_MODELS / "asyncecho")
        subprocess.run([*CLI, "deploy", model, "--name", "slow", "--replicas", "2"],
                       env=env, check=True, capture_output=True, timeout=120)
        started = subprocess.run(
            [*CLI, "batch", "slow", "--input", str(src), "--output", str(dst),
             "--concurrency", "4", "--detach"],
            env=env, check=True, capture_output=True, text=True, timeout=60,
        )
        batch_id = started.stdout.split("batch run ")[1].split()[0]
        http = httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30)
        wait_until(lambda: http.get(f"/api/v1/batches/{batch_id}").json()["done"] >= 20)
        os.kill(up.pid, signal.SIGKILL)
        up.wait(timeout=10)
        http.close()
        partial = len(list(dst.glob("*.json")))
        assert 20 <= partial < N

        up = start(data, port)
        wait_http(f"{url}/api/v1/health")
        http = httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30)
        final = wait_until(
            lambda: (r := http.get(f"/api/v1/batches/{batch_id}").json())["state"] != "running"
            and r["finished_at"] and r
        )
        assert (final["state"], final["done"], final["failed"]) == ("succeeded", N, 0)
        results = sorted(p.name for p in dst.iterdir())
        assert results == [f"{i:03d}.json.json" for i in range(N)]  # no stray partial files
        for i in range(N):
            assert json.loads((dst / f"{i:03d}.json.json").read_text())["i"] == i
        shown = subprocess.run([*CLI, "batches", "show", batch_id], env=env, text=True,
                               capture_output=True, timeout=60)
        assert f"succeeded: {N} of {N} inputs have results" in shown.stdout
        http.close()
    finally:
        if up.poll() is None:
            os.kill(up.pid, signal.SIGINT)
            up.wait(timeout=20)
