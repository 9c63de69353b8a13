"""Reservations on a real platform with a declared inventory (this machine has no GPU)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Harness
from tests.polling import eventually

pytestmark = pytest.mark.integration

NODE = {"gpus": (0, 1), "cpus": 4.0, "node_memory": 4 * 2**30}


def body(name: str, path: Path, **spec: Any) -> dict[str, Any]:
    return {"name": name, "model": {"path": str(path)}, "mode": "dedicated", **spec}


@pytest.mark.parametrize("platform_settings", [NODE])
async def test_gpu_replicas_get_their_own_device_and_the_node_is_never_overcommitted(
    harness: Harness, fixture_models: Path
) -> None:
    envecho = fixture_models / "envecho"
    gpu = {"gpu": 1, "cpu": 1, "memory": "256Mi"}
    await harness.deploy("gpu", envecho, scale={"replicas": 2}, resources=gpu)
    await harness.wait_ready("gpu", 2)
    view = (await harness.http.get("/api/v1/resources")).json()
    assert view["inventory"]["gpus"] == [
        {"index": 0, "name": "GPU", "memory": 0},
        {"index": 1, "name": "GPU", "memory": 0},
    ]
    granted = sorted(
        d for r in view["deployments"]["gpu"]["replicas"].values() for d in r["gpu_devices"]
    )
    assert granted == [0, 1] and view["reserved"]["gpu"] == 2
    seen: set[str] = set()
    for _ in range(20):
        r = await harness.predict("gpu", {"keys": ["CUDA_VISIBLE_DEVICES"]})
        seen.add(r.json()["CUDA_VISIBLE_DEVICES"])
    assert seen <= {"0", "1"} and seen

    # a dedicated deployment that cannot fit is refused at create, saying what is short
    r = await harness.http.post("/api/v1/deployments", json=body("more", envecho, resources=gpu))
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "insufficient_resources"
    assert "gpu: needs 1 GPU, 0 GPUs free of 2 GPUs (short by 1 GPU)" in r.json()["message"]
    r = await harness.http.post(
        "/api/v1/deployments", json=body("huge", envecho, resources={"gpu": 3})
    )
    assert r.status_code == 422 and "resources.gpu" in r.json()["message"]

    # a serverless one is accepted; its scale-up finds the node full and stays pending
    spec = body("spill", envecho, mode="serverless", resources=gpu, scale={"min": 0, "max": 1})
    assert (await harness.http.post("/api/v1/deployments", json=spec)).status_code == 201
    r = await harness.predict("spill", {"keys": []})
    assert r.status_code == 503 and "not enough free resources" in r.json()["message"]
    st = (await harness.status("spill"))["status"]
    assert st["state"] == "pending" and "short by 1 GPU" in st["pending"]

    # the dedicated deployment shrinks: the pending one gets the freed device
    updated = (await harness.status("gpu"))["spec"] | {"scale": {"replicas": 1}}
    assert (await harness.http.put("/api/v1/deployments/gpu", json=updated)).status_code == 200

    async def spilled() -> Any:
        r = await harness.predict("spill", {"keys": ["CUDA_VISIBLE_DEVICES"]})
        return r.json() if r.status_code == 200 else None

    got = await eventually(spilled, timeout=30)
    assert got["CUDA_VISIBLE_DEVICES"] in {"0", "1"}
    await harness.wait_ready("gpu", 1)


@pytest.mark.parametrize("platform_settings", [NODE])
async def test_racing_deploys_cannot_both_take_the_last_gpus(
    harness: Harness, fixture_models: Path
) -> None:
    async def deploy(name: str) -> httpx.Response:
        spec = body(name, fixture_models / "envecho", scale={"replicas": 2}, resources={"gpu": 1})
        return await harness.http.post("/api/v1/deployments", json=spec)

    results = await asyncio.gather(*(deploy(f"race-{i}") for i in range(4)))
    codes = sorted(r.status_code for r in results)
    assert codes == [201, 409, 409, 409], [r.text for r in results]
    [winner] = [r.json()["name"] for r in results if r.status_code == 201]
    await harness.wait_ready(winner, 2)
    view = (await harness.http.get("/api/v1/resources")).json()
    assert view["free"]["gpu"] == 0


@pytest.mark.parametrize("platform_settings", [NODE])
async def test_quota_refuses_with_403_and_counts_deployments(
    harness: Harness, examples: Path
) -> None:
    r = await harness.http.post(
        "/api/v1/users", json={"name": "ann", "quotas": {"cpu": 1, "deployments": 1}}
    )
    assert r.status_code == 201
    token = (await harness.http.post("/api/v1/tokens", json={"user": "ann"})).json()["token"]
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=harness.platform.url, headers=headers) as ann:
        spec = body("a1", examples / "echo", scale={"replicas": 2}, resources={"cpu": 1})
        r = await ann.post("/api/v1/deployments", json=spec)
        assert r.status_code == 403 and r.json()["error"] == "quota_exceeded"
        assert (
            "cpu: needs 2 cores, 1 core left in the quota of 1 core (short by 1 core)"
            in (r.json()["message"])
        )
        spec = body("a1", examples / "echo", resources={"cpu": 0.5, "memory": "128Mi"})
        assert (await ann.post("/api/v1/deployments", json=spec)).status_code == 201
        spec = body("a2", examples / "echo", resources={"cpu": 0.1, "memory": "64Mi"})
        r = await ann.post("/api/v1/deployments", json=spec)
        assert r.status_code == 403 and "deployments: needs 1" in r.json()["message"]
        me = (await ann.get("/api/v1/users/ann")).json()
        assert me["deployments"] == 1
