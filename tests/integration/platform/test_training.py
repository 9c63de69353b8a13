"""DEEPaaS training on the platform: its own process in its deployment's sandbox, holding its
deployment's resources, with durable records across a restart. Real bubblewrap, real processes;
the node's GPUs are declared (this machine has none), as in test_gpu_reservations.py."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from modelplane.procs import descendants
from tests.integration.conftest import Harness, start_platform
from tests.polling import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow]
pytest.importorskip("marshmallow", reason="the DEEPaaS fixture module needs webargs/marshmallow")
TRAIN = "/deepaas/files/v2/models/deepaas_files/train/"


async def _status(h: Harness, uid: str) -> dict[str, Any]:
    r = await h.http.get(TRAIN + uid)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _trainings(h: Harness, deployment: str) -> dict[str, Any]:
    view = (await h.http.get("/api/v1/resources")).json()
    return dict(view["deployments"].get(deployment, {}).get("trainings", {}))


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
        assert body["status"] == "done", body
        assert body["result"]["output"]["trained"] == {"epochs": 2, "seconds": 0.0}
        assert body["result"]["output"]["pid"] not in replica_pids  # never a serving replica
        bad = await h.http.post(TRAIN + "?epochs=x", timeout=60)
        assert bad.status_code == 422 and bad.json() == {"epochs": ["Not a valid integer."]}
        slow = (await h.http.post(TRAIN + "?seconds=4", timeout=60)).json()["uuid"]
        doomed = (await h.http.post(TRAIN + "?seconds=120", timeout=60)).json()["uuid"]
        record = (data / "trainings" / "files" / f"{doomed}.json").read_text()
        doomed_pid = int(json.loads(record)["pid"])
        kept = (await h.http.post(TRAIN + "?seconds=60", timeout=60)).json()["uuid"]
        assert f"train-{kept}" in await _trainings(h, "files")
    finally:
        await h.http.aclose()
        await h.platform.stop()
    os.kill(doomed_pid, signal.SIGKILL)  # dies (its whole sandbox) while no platform watches
    h = Harness(await start_platform(data))
    try:
        await h.wait_ready("files")
        listed = {t["uuid"]: t for t in (await h.http.get(TRAIN)).json()}
        assert quick in listed and slow in listed and doomed in listed
        lost = await _status(h, doomed)
        assert lost["status"] == "error" and "ended without a result" in lost["message"]
        resumed = await eventually(lambda: done(slow), timeout=60)  # finished on its own
        assert resumed["status"] == "done", resumed
        # Still running across the restart: it holds its resources again, until cancelled.
        assert (await _status(h, kept))["status"] == "running"
        only_kept = {f"train-{kept}": {"cpu": 1.0, "memory": 2**29, "gpu": 0, "gpu_devices": []}}

        async def held_by_kept_only() -> bool | None:
            # `slow` says done a moment before its process has exited and given its grant back
            return True if await _trainings(h, "files") == only_kept else None

        await eventually(held_by_kept_only, timeout=10)
        cancelled = await h.http.delete(TRAIN + kept, timeout=30)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert await _trainings(h, "files") == {}
        again = (await h.http.post(TRAIN + "?seconds=60", timeout=60)).json()["uuid"]
        cancelled = await h.http.delete(TRAIN + again, timeout=30)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert (await h.http.get(TRAIN + again)).status_code == 404
        assert (await h.http.get(TRAIN + "0" * 32)).status_code == 404
    finally:
        await h.http.aclose()
        await h.platform.stop()


PLATFORM_SECRET = "MODELPLANE_TEST_PLATFORM_SECRET"
NODE = {"gpus": (0, 1), "cpus": 4.0, "node_memory": 4 * 2**30}
PROBE = "/deepaas/probe/v2/models/deepaas_probe/train/"


@pytest.fixture
def platform_settings(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv(PLATFORM_SECRET, "do-not-leak")  # in the platform's own environment
    return NODE


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[-1].split()[0]
    except OSError:
        return True
    return state == b"Z"


@pytest.mark.sandbox
async def test_training_runs_sandboxed_holding_its_deployments_resources(
    harness: Harness, fixture_models: Path
) -> None:
    h, s = harness, harness.platform.settings
    model = fixture_models / "deepaas_probe"
    resources = {"gpu": 1, "cpu": 1, "memory": "256Mi"}
    await h.deploy("probe", model, resources=resources, env={"MODEL_SETTING": "mine"})
    await h.wait_ready("probe")

    # While it runs, a training holds one replica's worth: the node's other GPU (the replica
    # has the first), shown by the node's API, so a second training finds no GPU left.
    r = await h.http.post(PROBE + "?seconds=60", timeout=60)
    assert r.status_code == 200, r.text
    long_one = r.json()["uuid"]
    assert await _trainings(h, "probe") == {
        f"train-{long_one}": {"cpu": 1.0, "memory": 2**28, "gpu": 1, "gpu_devices": [1]}
    }
    view = (await h.http.get("/api/v1/resources")).json()
    assert view["reserved"]["gpu"] == 2 and view["free"]["gpu"] == 0
    refused = await h.http.post(PROBE, timeout=60)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "insufficient_resources"
    assert "gpu: needs 1 GPU, 0 GPUs free of 2 GPUs (short by 1 GPU)" in refused.json()["message"]
    assert list(s.data_dir.glob("trainings/probe/*.json")) == [
        s.data_dir / "trainings" / "probe" / f"{long_one}.json"
    ]  # the refused one left nothing behind
    record = json.loads((s.data_dir / "trainings" / "probe" / f"{long_one}.json").read_text())
    sandbox = [record["pid"], *descendants(record["pid"])]
    assert len(sandbox) >= 4  # the holding shell, bwrap, the namespace's init, the interpreter
    # Cancelled: every process of its sandbox ends, and what it held is free again.
    r = await h.http.delete(PROBE + long_one, timeout=30)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert await _trainings(h, "probe") == {}
    await eventually(lambda: all(_gone(p) for p in sandbox) or None, timeout=10)

    # What the training's own code sees: nothing of the platform's, no platform secret, its
    # own GPU, its deployment's env; writable: /tmp, its cache, its own folder only.
    secret_paths = {
        "token": s.token_file,
        "store": s.data_dir / "modelplane.db",
        "data": s.data_dir,
        "buckets": s.buckets_dir,
        "records": s.data_dir / "trainings" / "probe",
    }
    writes = {
        "data": s.data_dir / "planted",
        "model": model / "planted",
        "tmp": "/tmp/scratch",
        "cache": "/cache/mine",
        "own": "/run/modelplane/training/mine",
    }
    q = "read=" + ",".join(map(str, secret_paths.values()))
    q += "&write=" + ",".join(map(str, writes.values()))
    q += f"&connect=127.0.0.1:{h.platform.port}"
    r = await h.http.post(PROBE + "?" + q, timeout=60)
    assert r.status_code == 200, r.text
    uid = r.json()["uuid"]

    async def finished(uid: str) -> dict[str, Any] | None:
        body = (await h.http.get(PROBE + uid)).json()
        return body if body["status"] != "running" else None

    body = await eventually(lambda: finished(uid), timeout=60)
    assert body["status"] == "done", body
    out = body["result"]["output"]
    for what, path in secret_paths.items():
        assert out["read"][str(path)] == (
            f"FileNotFoundError: [Errno 2] No such file or directory: '{path}'"
        ), what
    written = {what: out["write"][str(path)] for what, path in writes.items()}
    assert written == {
        "data": f"FileNotFoundError: [Errno 2] No such file or directory: '{writes['data']}'",
        "model": f"OSError: [Errno 30] Read-only file system: '{writes['model']}'",
        "tmp": "ok",
        "cache": "ok",
        "own": "ok",
    }
    assert not (s.data_dir / "planted").exists() and not (model / "planted").exists()
    env = out["env"]
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["MODEL_SETTING"] == "mine"
    assert PLATFORM_SECRET not in env and os.environ[PLATFORM_SECRET] == "do-not-leak"
    assert out["connect"] == "ok"  # network: allowed by default
    if os.geteuid() == 0:
        assert out["uid"] not in (0, os.getuid())  # the deployment's own uid

    # Ended: its reservation is given back.
    async def released() -> bool | None:
        return True if await _trainings(h, "probe") == {} else None

    await eventually(released, timeout=10)

    # Over its memory limit (256Mi), it is stopped as a replica would be.
    r = await h.http.post(PROBE + "?allocate_mib=400&seconds=30", timeout=60)
    assert r.status_code == 200, r.text
    big = r.json()["uuid"]
    body = await eventually(lambda: finished(big), timeout=30)
    assert body["status"] == "error"
    assert "over its memory limit of 256 MiB, and was stopped" in body["message"]
    await eventually(released, timeout=10)


@pytest.mark.sandbox
async def test_a_training_of_an_offline_deployment_has_no_network(
    harness: Harness, fixture_models: Path
) -> None:
    h = harness
    await h.deploy("probe", fixture_models / "deepaas_probe", network="none")
    await h.wait_ready("probe")
    r = await h.http.post(PROBE + f"?connect=127.0.0.1:{h.platform.port}", timeout=60)
    assert r.status_code == 200, r.text
    uid = r.json()["uuid"]

    async def finished() -> dict[str, Any] | None:
        body = (await h.http.get(PROBE + uid)).json()
        return body if body["status"] != "running" else None

    out = (await eventually(finished, timeout=60))["result"]["output"]
    assert out["connect"] == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert "CUDA_VISIBLE_DEVICES" in out["env"]  # a node with GPUs: none for a gpu: 0 training
    assert out["env"]["CUDA_VISIBLE_DEVICES"] == ""


@pytest.mark.sandbox
async def test_a_training_uses_its_models_own_environment(
    harness: Harness, fixture_models: Path, tmp_path: Path
) -> None:
    # Another webargs than the platform's own: the training's interpreter is the model's.
    folder = tmp_path / "probe-env"
    shutil.copytree(fixture_models / "deepaas_probe", folder)
    (folder / "requirements.txt").write_text("webargs==5.5.2\nmarshmallow<4\n")
    assert importlib.metadata.version("webargs") != "5.5.2"
    await harness.deploy("probe", folder)
    await harness.wait_ready("probe", timeout=180)
    r = await harness.http.post(PROBE, timeout=60)
    assert r.status_code == 200, r.text
    uid = r.json()["uuid"]

    async def finished() -> dict[str, Any] | None:
        body = (await harness.http.get(PROBE + uid)).json()
        return body if body["status"] != "running" else None

    body = await eventually(finished, timeout=60)
    assert body["status"] == "done", body
    out = body["result"]["output"]
    assert out["webargs"] == "5.5.2"
    envs = harness.platform.settings.envs_dir.resolve()
    assert Path(out["python"]).is_relative_to(envs), out["python"]


async def test_a_trainings_output_is_logged_and_never_blocks_it(
    harness: Harness, fixture_models: Path
) -> None:
    # 300 KiB of output: more than a pipe holds, were nobody reading it
    await harness.deploy("probe", fixture_models / "deepaas_probe")
    await harness.wait_ready("probe")
    r = await harness.http.post(PROBE + "?say=300", timeout=60)
    assert r.status_code == 200, r.text
    uid = r.json()["uuid"]

    async def finished() -> dict[str, Any] | None:
        body = (await harness.http.get(PROBE + uid)).json()
        return body if body["status"] != "running" else None

    assert (await eventually(finished, timeout=60))["status"] == "done"

    async def logged() -> list[str] | None:
        r = await harness.http.get("/api/v1/deployments/probe/logs?tail=1000")
        lines = [line for line in r.json()["lines"] if f"train-{uid[:8]}" in line]
        return lines if any("said everything" in line for line in lines) else None

    lines = await eventually(logged, timeout=10)
    assert sum("epoch " in line for line in lines) == 300


async def test_removing_a_deployment_cancels_and_forgets_its_trainings(
    harness: Harness, fixture_models: Path
) -> None:
    h = harness
    await h.deploy("probe", fixture_models / "deepaas_probe")
    await h.wait_ready("probe")
    uid = (await h.http.post(PROBE + "?seconds=60", timeout=60)).json()["uuid"]
    folder = h.platform.settings.data_dir / "trainings" / "probe"
    record = json.loads((folder / f"{uid}.json").read_text())
    sandbox = [record["pid"], *descendants(record["pid"])]
    assert (await h.http.delete("/api/v1/deployments/probe")).status_code == 204

    async def all_gone() -> bool | None:
        return True if all(_gone(p) for p in sandbox) and not folder.exists() else None

    await eventually(all_gone, timeout=15)
    view = (await h.http.get("/api/v1/resources")).json()
    assert "probe" not in view["deployments"]
