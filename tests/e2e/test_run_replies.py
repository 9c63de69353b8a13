"""``modelplane run`` answers every misbehaving reply precisely, logs it, and keeps serving."""

from __future__ import annotations

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


def test_run_survives_misbehaving_replies_and_logs_tracebacks(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "run.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*CLI, "run", str(FIXTURE_MODELS / "faulty"), "--port", str(port)],
            env={**os.environ, "COLUMNS": "200"},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health")
        expected = {"int_keys": 200, "set": 200, "nan": 200, "object": 500, "tolist": 500}
        expected |= {"broken_str": 500, "system_exit": 500, "keyboard": 500, "cycle": 500}
        for kind, status in expected.items():
            r = httpx.post(f"{url}/predict", json={"misbehave": kind}, timeout=30)
            assert r.status_code == status, (kind, r.text[:300])
        r = httpx.post(f"{url}/predict", json={"misbehave": "int_keys"})
        assert r.json() == {"0": ["Not a valid number."], "1": {"2": "deep"}}
        r = httpx.post(f"{url}/predict", json={"misbehave": "system_exit"})
        assert r.json()["message"] == "model 'faulty' raised SystemExit: 4"
        assert httpx.post(f"{url}/predict", json={}).json()["ok"] is True
        wait_until(lambda: "SystemExit: 4" in log.read_text(), timeout=10, what="the traceback")
        text = log.read_text()
        assert "Traceback (most recent call last)" in text
        assert "modelplane: model 'faulty': predict raised" in text
        assert "SystemExit: 4" in text
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=10)
