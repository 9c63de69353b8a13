"""SIGKILL the platform 5 times (the first once the batch run is at work, the others at seeded
random moments) while 10,000 asynchronous jobs (uploaded into an echo deployment's input bucket
200 files per multipart request, the fastest way in) and a server-side batch run over 3,000
files are in progress; restart it each time. In the end: every job succeeded, exactly one job
and one result per input (none lost, none duplicated), each result equal to its input, only
jobs a kill interrupted ran again, and the batch run's results likewise. The figures are
printed (-s)."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelplane.storage._files import is_temp_name
from tests.e2e.test_cli import CLI, free_port, wait_http
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(400)]
JOBS = 10_000
BATCH = 3_000
KILLS = 5
SEED = 12


def start(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*CLI, "up", "--data-dir", str(data), "--port", str(port)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def connect(url: str, data: Path) -> httpx.Client:
    wait_http(f"{url}/api/v1/health", timeout=60)
    token = (data / "admin.token").read_text().strip()
    return httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30)


def upload(http: httpx.Client, n: int, per_request: int = 200) -> None:
    """``n`` jobs, ``per_request`` files in each multipart upload, two uploads in flight."""

    def one(first: int) -> None:
        files = [
            (
                "files",
                (f"job-{i:05d}.json", json.dumps({"i": i, "from": "job"}), "application/json"),
            )
            for i in range(first, min(n, first + per_request))
        ]
        r = http.post("/api/v1/deployments/echo/jobs", files=files)
        assert r.status_code == 201, r.text

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, range(0, n, per_request)))


def test_five_kills_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    data, port = tmp_path / "data", free_port()
    url, log = f"http://127.0.0.1:{port}", tmp_path / "platform.log"
    dataset, predictions = tmp_path / "dataset", tmp_path / "predictions"
    dataset.mkdir()
    for i in range(BATCH):
        (dataset / f"b-{i:05d}.json").write_text(json.dumps({"i": i, "from": "batch"}))
    began = time.monotonic()
    up = start(data, port, log)
    kills: list[dict[str, Any]] = []
    try:
        http = connect(url, data)
        r = http.post(
            "/api/v1/deployments",
            json={
                "name": "echo",
                "mode": "dedicated",
                "scale": {"replicas": 2},
                "model": {"path": str(Path("examples/echo").resolve())},
                "input": "kin",
                "output": "kout",
            },
        )
        assert r.status_code == 201, r.text
        wait_until(
            lambda: http.get("/api/v1/deployments/echo").json()["status"]["ready"] >= 2,
            timeout=120,
            interval=0.1,
        )
        upload(http, JOBS)
        uploaded = time.monotonic() - began
        r = http.post(
            "/api/v1/batches",
            json={
                "deployment": "echo",
                "input": str(dataset),
                "output": str(predictions),
                "concurrency": 2,  # slow enough that the kills find it at work
            },
        )
        assert r.status_code == 201, r.text
        batch_id = r.json()["id"]

        for k in range(KILLS):
            if k == 0:  # the first kill as soon as the batch run is at work, whatever the machine
                started = time.monotonic()
                wait_until(
                    lambda: http.get(f"/api/v1/batches/{batch_id}").json()["done"] >= 100,
                    timeout=120,
                    interval=0.1,
                )
                http.close()
                pause = time.monotonic() - started
            else:
                pause = rng.uniform(1.0, 6.0)  # seconds of work after the platform is back
                time.sleep(pause)  # not a synchronisation: the kill's moment, from the seed
            os.kill(up.pid, signal.SIGKILL)
            up.wait(timeout=10)
            kills.append({"after_s": round(pause, 2), **progress(data)})
            up = start(data, port, log)
            connect(url, data).close()

        http = connect(url, data)

        def finished() -> dict[str, Any] | None:
            counts = http.get("/api/v1/deployments/echo/jobs").json()["counts"]
            run = http.get(f"/api/v1/batches/{batch_id}").json()
            done = counts.get("succeeded", 0) == JOBS and run["state"] != "running"
            return {"counts": counts, "run": run} if done else None

        final = wait_until(finished, timeout=300, interval=0.1)
        took = time.monotonic() - began
        http.close()
    finally:
        if up.poll() is None:
            os.kill(up.pid, signal.SIGINT)
            up.wait(timeout=30)

    # Every job accounted for: one job per input, all succeeded.
    assert final["counts"] == {"succeeded": JOBS}
    db = sqlite3.connect(f"file:{data / 'modelplane.db'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT input_key, state, attempts FROM jobs").fetchall()
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        db.close()
    keys = sorted(r[0] for r in rows)
    assert keys == [f"job-{i:05d}.json" for i in range(JOBS)]  # none lost, none twice
    assert {r[1] for r in rows} == {"succeeded"}
    rerun = {r[0] for r in rows if r[2] > 1}
    # Only a job a kill interrupted ran again: nothing finished was done a second time.
    interrupted = set().union(*(k.pop("running_keys") for k in kills))
    assert rerun <= interrupted, sorted(rerun - interrupted)[:10]
    # One result per input, equal to it. The temporary files of writes the kills cut short were
    # swept at the restarts (how many: the platform's log).
    out = sorted(p.name for p in (data / "buckets" / "kout").iterdir())
    assert out == [f"job-{i:05d}.json.json" for i in range(JOBS)]
    swept = sum(
        int(line.split("removed ")[1].split()[0])
        for line in log.read_text().splitlines()
        if "temporary files of writes cut short" in line
    )
    for i in range(0, JOBS, 97):  # a sample of the contents (all of them: another 10,000 reads)
        path = data / "buckets" / "kout" / f"job-{i:05d}.json.json"
        assert json.loads(path.read_text()) == {"i": i, "from": "job"}
    # The batch run, too.
    run = final["run"]
    assert (run["state"], run["done"], run["failed"]) == ("succeeded", BATCH, 0)
    # (A batch run's output folder is not a bucket: a cut write's temporary file may stay.)
    results = sorted(p.name for p in predictions.iterdir() if not is_temp_name(p.name))
    assert results == [f"b-{i:05d}.json.json" for i in range(BATCH)]
    for i in range(BATCH):
        got = json.loads((predictions / f"b-{i:05d}.json.json").read_text())
        assert got == {"i": i, "from": "batch"}
    assert len(kills) == KILLS
    assert any(k["running"] or k["queued"] for k in kills), "the kills hit jobs at work"
    assert any(0 < k["batch_done"] < BATCH for k in kills), (
        f"no kill hit the batch run at work: {kills}"
    )
    print(
        f"\n{JOBS} jobs + a batch run of {BATCH}; {KILLS} SIGKILLs at {kills}; "
        f"lost 0, duplicated 0; {len(rerun)} jobs ran again after a kill; {swept} temporary files "
        f"of cut writes swept at restarts; uploaded in {uploaded:.1f} s, "
        f"{took:.1f} s in all"
    )


def progress(data: Path) -> dict[str, Any]:
    """Where the work was when the platform was killed (read from the store it left)."""
    db = sqlite3.connect(f"file:{data / 'modelplane.db'}?mode=ro", uri=True)
    try:
        counts = dict(db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
        running = {r[0] for r in db.execute("SELECT input_key FROM jobs WHERE state='running'")}
        (batch_done,) = db.execute("SELECT done FROM batches").fetchone()
    finally:
        db.close()
    at = {s: counts.get(s, 0) for s in ("queued", "running", "succeeded")}
    return {**at, "batch_done": batch_done, "running_keys": running}
