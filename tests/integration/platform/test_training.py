"""DEEPaaS training on the platform: its own process, durable records across a restart."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Harness, start_platform
from tests.polling import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow]
pytest.importorskip("marshmallow", reason="the DEEPaaS fixture module needs webargs/marshmallow")
TRAIN = "/deepaas/files/v2/models/deepaas_files/train/"


async def _status(h: Harness, uid: str) -> dict[str, Any]:
    r = await h.http.get(TRAIN + uid)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_training_runs_apart_and_survives_a_restart(
    tmp_path: Path, fixture_models: Path
) -> None:
    data = tmp_path / "data"
    h = Harness(await start_platform(data))
    try:
        await h.deploy("files", fixture_models / "deepaas_files")
        st = await h.wait_ready("files")
        replica_pids = {r["pid"] for r in st["replicas"]}
        r = await h.http.post(TRAIN + "?epochs=2", timeout=60)
        assert r.status_code == 200 and r.json()["status"] == "running"
        quick = r.json()["uuid"]

        async def done(uid: str) -> dict[str, Any] | None:
            body = await _status(h, uid)
            return body if body["status"] != "running" else None

        body = await eventually(lambda: done(quick), timeout=60)
        assert body["status"] == "done"
        assert body["result"]["output"]["trained"] == {"epochs": 2, "seconds": 0.0}
        assert body["result"]["output"]["pid"] not in replica_pids  # never a serving replica
        bad = await h.http.post(TRAIN + "?epochs=x", timeout=60)
        assert bad.status_code == 422 and bad.json() == {"epochs": ["Not a valid integer."]}
        slow = (await h.http.post(TRAIN + "?seconds=4", timeout=60)).json()["uuid"]
        doomed = (await h.http.post(TRAIN + "?seconds=120", timeout=60)).json()["uuid"]
        record = (data / "trainings" / "files" / f"{doomed}.json").read_text()
        doomed_pid = int(json.loads(record)["pid"])
    finally:
        await h.http.aclose()
        await h.platform.stop()
    os.killpg(doomed_pid, signal.SIGKILL)  # dies while no platform watches it
    h = Harness(await start_platform(data))
    try:
        await h.wait_ready("files")
        listed = {t["uuid"]: t for t in (await h.http.get(TRAIN)).json()}
        assert quick in listed and slow in listed and doomed in listed
        lost = await _status(h, doomed)
        assert lost["status"] == "error" and "ended without a result" in lost["message"]
        resumed = await eventually(lambda: done(slow), timeout=60)  # finished on its own
        assert resumed["status"] == "done"
        again = (await h.http.post(TRAIN + "?seconds=60", timeout=60)).json()["uuid"]
        cancelled = await h.http.delete(TRAIN + again, timeout=30)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert (await h.http.get(TRAIN + again)).status_code == 404
        assert (await h.http.get(TRAIN + "0" * 32)).status_code == 404
    finally:
        await h.http.aclose()
        await h.platform.stop()
