"""The S3 server disappears while jobs are queued and running, and comes back: the jobs wait
(none fails, none is lost), `/api/v1/health` says the storage is degraded meanwhile, uploads
answer 503 naming the cause, and once S3 is back every job finishes, each input predicted once.

moto's server keeps its objects in memory, so stopping and restarting it would lose them; the
test puts a small TCP proxy of its own in front of moto instead and cuts it (the listening port
closed, every open connection dropped: what a vanished server looks like from the platform),
then restores it on the same port."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
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
    pytest.mark.skipif(MOTO_MISSING, reason=MOTO_MISSING_REASON),
]
N = 40
OUTAGE_S = 10.0
"""Longer than a job's three attempts would last with the retry backoff (1 s + 2 s + 4 s)."""


class Proxy:
    """A TCP proxy on a fixed loopback port to ``target``; :meth:`cut` and :meth:`restore`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def cut(self) -> None:
        assert self._listener is not None
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._listener = None
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._conns -= {src, dst}


def start(data: Path, port: int, s3: str, log: Path) -> subprocess.Popen[bytes]:
    args = [*CLI, "up", "--data-dir", str(data), "--port", str(port)]
    args += ["--storage", "s3", "--s3-endpoint", s3, "--s3-region", "us-east-1"]
    args += ["--watch-interval", "0.5", "--no-sandbox"]  # the ledger file is outside any sandbox
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    return subprocess.Popen(
        args, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True, env=env
    )


def test_jobs_wait_out_an_s3_outage_and_resume(
    tmp_path: Path,
    moto_endpoint: str,  # noqa: F811
) -> None:
    host, port_s = moto_endpoint.removeprefix("http://").split(":")
    proxy = Proxy((host, int(port_s)))
    ledger = tmp_path / "ledger.jsonl"
    data, port, log = tmp_path / "data", free_port(), tmp_path / "platform.log"
    up = start(data, port, f"http://127.0.0.1:{proxy.port}", log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/api/v1/health")
        token = (data / "admin.token").read_text().strip()
        http = httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=60)
        r = http.post(
            "/api/v1/deployments",
            json={
                "name": "ledger",
                "mode": "dedicated",
                "scale": {"replicas": 1, "target_concurrency": 2},
                "model": {"path": str(FIXTURE_MODELS / "ledger")},
                "env": {"LEDGER": str(ledger)},
                "input": "s3out-in",
                "output": "s3out-out",
            },
        )
        assert r.status_code == 201, r.text
        for i in range(N):
            r = http.put(
                f"/api/v1/buckets/s3out-in/objects/item-{i:03d}.json",
                content=json.dumps({"i": i, "delay": 0.5 + 0.15 * i}).encode(),  # done one by one
                headers={"content-type": "application/json"},
            )
            assert r.status_code == 201, r.text

        def counts() -> dict[str, int]:
            return dict(http.get("/api/v1/deployments/ledger/jobs").json()["counts"])

        def some_done_most_at_work() -> bool:
            c = counts()
            return c.get("succeeded", 0) >= 2 and c.get("running", 0) + c.get("queued", 0) >= 20

        wait_until(some_done_most_at_work, timeout=60)
        proxy.cut()
        cut_at = time.monotonic()

        def degraded() -> dict[str, Any] | None:
            storage = http.get("/api/v1/health").json()["storage"]
            return storage if storage["status"] == "degraded" else None

        storage = wait_until(degraded, timeout=60)
        assert "the S3 server" in storage["error"] and storage["error"].startswith("503: ")
        r = http.put("/api/v1/buckets/s3out-in/objects/late.json", content=b"{}")
        assert r.status_code == 503, r.text
        assert "the S3 server" in r.json()["message"]
        # The outage lasts (this is the fault's duration, not a synchronisation); meanwhile no
        # job fails and none finishes.
        during: list[dict[str, int]] = []
        while time.monotonic() - cut_at < OUTAGE_S:
            during.append(counts())
            time.sleep(0.5)
        assert all(c.get("failed", 0) == 0 for c in during), during
        assert len({c.get("succeeded", 0) for c in during[2:]}) == 1, during
        proxy.restore()

        wait_until(lambda: counts() == {"succeeded": N}, timeout=90)
        assert http.get("/api/v1/health").json()["storage"] == {"status": "ok"}
        done = [json.loads(line)["i"] for line in ledger.read_text().splitlines()]
        assert sorted(done) == list(range(N)), "each input predicted exactly once"
        listing = http.get("/api/v1/buckets/s3out-out/objects").json()["objects"]
        assert sorted(o["key"] for o in listing) == [f"item-{i:03d}.json.json" for i in range(N)]
        jobs = http.get("/api/v1/deployments/ledger/jobs", params={"limit": 100}).json()["jobs"]
        assert {j["attempts"] for j in jobs} == {1}  # waited, never retried
        assert "waits for storage" in log.read_text()
        http.close()
    finally:
        if up.poll() is None:
            os.kill(up.pid, signal.SIGINT)
            up.wait(timeout=30)
        with contextlib.suppress(AssertionError, OSError):
            proxy.cut()
