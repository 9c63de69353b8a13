"""The data directory's disk fills up under a running `modelplane up` (a real 8 MiB tmpfs
mounted as the data directory, filled to the last byte by a ballast file): uploads answer 507
naming the cause, jobs whose results cannot be written wait (queued, the error on them, their
attempts not used up), the SQLite store stays consistent, and once the ballast is removed the
waiting jobs finish and new uploads and jobs succeed."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FIXTURE_MODELS
from tests.e2e.test_cli import CLI, free_port, wait_http
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
N = 4


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs: a disk that fills up in milliseconds."""
    where = tmp_path / "data"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the full-disk test runs as root in CI)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path: Path) -> int:
    """Write ``path`` until the disk is full; the bytes written."""
    written = 0
    chunk = b"\0" * 65536
    with path.open("wb", buffering=0) as f:
        while True:
            try:
                written += f.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
        # the last partial block, down to the byte
        for size in (4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    written += f.write(chunk[:size])
    return written


def start(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*CLI, "up", "--data-dir", str(data), "--port", str(port)],
        stdout=log.open("wb"),  # outside the small disk: the log must not be what fills it
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def put(http: httpx.Client, key: str, body: dict[str, Any]) -> httpx.Response:
    return http.put(
        f"/api/v1/buckets/disk-in/objects/{key}",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )


def test_a_full_disk_answers_507_keeps_the_store_and_resumes(
    small_disk: Path, tmp_path: Path
) -> None:
    data, port = small_disk, free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "platform.log"
    up = start(data, port, log)
    ballast = data / "ballast"
    try:
        wait_http(f"{url}/api/v1/health")
        token = (data / "admin.token").read_text().strip()
        http = httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30)
        r = http.post(
            "/api/v1/deployments",
            json={
                "name": "disk",
                "mode": "dedicated",
                "model": {"path": str(FIXTURE_MODELS / "asyncecho")},
                "input": "disk-in",
                "output": "disk-out",
            },
        )
        assert r.status_code == 201, r.text
        wait_until(
            lambda: http.get("/api/v1/deployments/disk").json()["status"]["ready"] >= 1, timeout=60
        )

        # Jobs that are still predicting when the disk fills: their results have nowhere to go.
        # The disk fills once all of them are running (claimed, their leases in the store), and
        # well before their delay is over: under load, filling straight after the uploads could
        # come before the runner had claimed the last one (the claim then meets the full store).
        pad = "x" * 20_000
        for i in range(N):
            assert put(http, f"job-{i}.json", {"i": i, "delay": 5.0, "pad": pad}).status_code == 201
        wait_until(
            lambda: http.get("/api/v1/deployments/disk/jobs").json()["counts"].get("running") == N,
            timeout=30,
            what=f"all {N} jobs running",
        )
        assert fill(ballast) > 0

        r = put(http, "late.json", {"i": 99, "pad": pad})
        assert r.status_code == 507, r.text
        err = r.json()
        assert err["error"] == "insufficient_storage"
        assert "disk holding the buckets is full" in err["message"]
        assert "No space left on device" in err["message"]
        assert "late.json" in err["message"]
        assert "free space" in err["hint"]
        assert int(r.headers["retry-after"]) >= 1

        # The replicas answer, the results have nowhere to go: the jobs wait, running, with
        # their leases kept; nothing is half-written in the output bucket. (The store sits on
        # the full disk too, so the job's note of the error is best effort and not asserted.)
        wait_until(lambda: log.read_text().count("waits for storage") >= N, timeout=60)
        jobs = http.get("/api/v1/deployments/disk/jobs").json()["jobs"]
        assert [j["state"] for j in jobs] == ["running"] * N
        health = http.get("/api/v1/health").json()
        assert health["storage"]["status"] == "degraded"
        assert "507: the disk holding the buckets is full" in health["storage"]["error"]
        assert not list((data / "buckets" / "disk-out").glob("*.json"))
        assert "the disk holding the buckets is full" in log.read_text()

        # The store is consistent while the disk is full (read-only, beside the running platform).
        db = sqlite3.connect(f"file:{data / 'modelplane.db'}?mode=ro", uri=True)
        try:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            db.close()

        ballast.unlink()
        final = wait_until(
            lambda: (
                (c := http.get("/api/v1/deployments/disk/jobs").json()["counts"])
                == {"succeeded": N}
                and c
            ),
            timeout=60,
        )
        assert final == {"succeeded": N}
        assert http.get("/api/v1/health").json()["storage"] == {"status": "ok"}
        jobs = http.get("/api/v1/deployments/disk/jobs").json()["jobs"]
        assert [(j["attempts"], j["error"]) for j in jobs] == [(1, None)] * N  # never re-run
        for i in range(N):
            out = json.loads((data / "buckets" / "disk-out" / f"job-{i}.json.json").read_text())
            assert out["i"] == i

        # Service resumed: a new upload and its job succeed.
        r = put(http, "late.json", {"i": 99})
        assert r.status_code == 201, r.text
        wait_until(
            lambda: (
                http.get("/api/v1/deployments/disk/jobs").json()["counts"] == {"succeeded": N + 1}
            ),
            timeout=60,
        )
        assert json.loads((data / "buckets" / "disk-out" / "late.json.json").read_text()) == {
            "i": 99
        }
        db = sqlite3.connect(f"file:{data / 'modelplane.db'}?mode=ro", uri=True)
        try:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            db.close()
        http.close()
    finally:
        if up.poll() is None:
            os.kill(up.pid, signal.SIGINT)
            up.wait(timeout=20)


def test_a_batch_run_waits_for_a_full_output_disk_and_finishes(
    small_disk: Path, tmp_path: Path
) -> None:
    """A batch run writing into a folder on the full tmpfs (the data directory elsewhere): the
    run waits with its results in hand, writes nothing partial, and completes once space is
    freed."""
    dataset, n = tmp_path / "dataset", 30
    dataset.mkdir()
    for i in range(n):
        (dataset / f"{i:03d}.json").write_text(json.dumps({"i": i}))
    data, port, log = tmp_path / "platform-data", free_port(), tmp_path / "platform.log"
    ballast = small_disk / ".ballast"  # a dot file: not an input nor a result to the run
    assert fill(ballast) > 0
    up = start(data, port, log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/api/v1/health")
        token = (data / "admin.token").read_text().strip()
        http = httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30)
        r = http.post(
            "/api/v1/deployments",
            json={
                "name": "bdisk",
                "mode": "dedicated",
                "model": {"path": str(FIXTURE_MODELS / "asyncecho")},
            },
        )
        assert r.status_code == 201, r.text
        r = http.post(
            "/api/v1/batches",
            json={"deployment": "bdisk", "input": str(dataset), "output": str(small_disk)},
        )
        assert r.status_code == 201, r.text
        run_id = r.json()["id"]
        wait_until(lambda: "batch results wait for storage" in log.read_text(), timeout=60)
        assert "the disk holding" in log.read_text()
        run = http.get(f"/api/v1/batches/{run_id}").json()
        assert (run["state"], run["done"], run["failed"]) == ("running", 0, 0)
        assert sorted(p.name for p in small_disk.iterdir()) == [".ballast"]  # nothing partial

        ballast.unlink()
        run = wait_until(
            lambda: (r := http.get(f"/api/v1/batches/{run_id}").json())["state"] != "running" and r,
            timeout=60,
        )
        assert (run["state"], run["done"], run["failed"]) == ("succeeded", n, 0)
        assert sorted(p.name for p in small_disk.iterdir()) == [
            f"{i:03d}.json.json" for i in range(n)
        ]
        for i in range(n):
            assert json.loads((small_disk / f"{i:03d}.json.json").read_text()) == {"i": i}
        http.close()
    finally:
        if up.poll() is None:
            os.kill(up.pid, signal.SIGINT)
            up.wait(timeout=20)
