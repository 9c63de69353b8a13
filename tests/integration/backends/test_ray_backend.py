"""The Ray backend on a real local multi-node Ray cluster: placement by CPU, GPU, memory and
custom resources (Ray's decision, shown in status), predictions through replicas on each node
over our own TCP frames, scale from zero, a refused placement in status, and a node lost under
load, with the warm templates of that node rebuilt on the node that replaces it. The tests share
the session's cluster and run in file order: the node-loss test goes last in this file and puts
a fresh "small" node in place of the one it removes."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from modelplane.backends.ray import RayBackend
from modelplane.controlplane.platform import Platform
from modelplane.settings import Settings
from tests.integration.conftest import Harness
from tests.polling import eventually
from tests.raycluster import RayCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.ray]


@pytest.fixture
async def ray_harness(tmp_path: Path, ray_cluster: RayCluster) -> AsyncIterator[Harness]:
    settings = Settings(
        data_dir=tmp_path / "data",
        port=0,
        reconcile_interval=0.1,
        stop_grace=2.0,
        backend="ray",
        ray_address=ray_cluster.address,
    )
    platform = Platform(settings)
    await platform.start()
    h = Harness(platform)
    try:
        yield h
    finally:
        await h.http.aclose()
        await platform.stop()


def nodes_of(status: dict[str, object]) -> list[str]:
    return sorted(str(r["node_id"]) for r in status["replicas"])  # type: ignore[attr-defined, index]


async def test_replicas_go_where_their_resources_are_and_answer_over_tcp(
    ray_harness: Harness, ray_cluster: RayCluster, fixture_models: Path
) -> None:
    h = ray_harness
    assert isinstance(h.platform.reconciler.backend, RayBackend)
    # Unix socket first (it connects only on this machine, which every node here is), then TCP.
    unix, tcp = h.platform.reconciler._gateway_address.split(",")
    assert unix == h.platform.listener.address and tcp == h.platform.listener.tcp_address
    await h.deploy(
        "ongpu",
        fixture_models / "envecho",
        scale={"replicas": 2},
        resources={"cpu": 0.5, "gpu": 1, "memory": "256Mi"},
    )
    await h.deploy(
        "onsmall",
        fixture_models / "envecho",
        resources={"cpu": 0.5, "memory": "256Mi", "custom": {"small": 1}},
    )
    gpu_status = await h.wait_ready("ongpu", 2, timeout=90)
    small_status = await h.wait_ready("onsmall", 1, timeout=90)
    assert nodes_of(gpu_status) == [ray_cluster.gpu.node_id] * 2
    assert nodes_of(small_status) == [ray_cluster.small.node_id]
    assert all(r["node"] for r in gpu_status["replicas"])
    # Each GPU replica sees the one GPU Ray gave it, and the two differ.
    keys = {"keys": ["CUDA_VISIBLE_DEVICES", "MODELPLANE_REPLICA_SECRET"]}
    answers = await asyncio.gather(*(h.predict("ongpu", keys) for _ in range(40)))
    assert [r.status_code for r in answers] == [200] * 40
    assert all(r.json()["MODELPLANE_REPLICA_SECRET"] is None for r in answers)  # not for models
    assert {r.json()["CUDA_VISIBLE_DEVICES"] for r in answers} == {"0", "1"}
    r = await h.predict("onsmall", {"keys": ["CUDA_VISIBLE_DEVICES"]})
    assert r.status_code == 200 and r.json()["CUDA_VISIBLE_DEVICES"] in ("", None)


async def test_a_request_no_node_can_hold_is_pending_with_the_reason(
    ray_harness: Harness, fixture_models: Path
) -> None:
    h = ray_harness
    # Within the cluster's totals (so admitted), but the GPUs and "small" are on different nodes.
    spec = {"cpu": 0.5, "gpu": 2, "memory": "256Mi", "custom": {"small": 1}}
    await h.deploy("toobig", fixture_models / "envecho", resources=spec)

    async def refused() -> dict[str, object] | None:
        st = (await h.status("toobig"))["status"]
        return st if st["last_error"] else None

    st = await eventually(refused, timeout=30)
    assert (
        "no single node of the Ray cluster has all of 0.5 CPUs, 256 MiB of memory, "
        "1 of 'small', 2 GPUs" in str(st["last_error"])
    )
    assert st["ready"] == 0


async def test_serverless_scales_from_zero_on_the_cluster(
    ray_harness: Harness, fixture_models: Path
) -> None:
    h = ray_harness
    await h.deploy(
        "lazy",
        fixture_models / "envecho",
        mode="serverless",
        scale={"min": 0, "max": 2, "idle_timeout": 60},
        resources={"cpu": 0.5, "memory": "256Mi"},
    )
    assert (await h.status("lazy"))["status"]["ready"] == 0
    r = await h.predict("lazy", {"keys": ["HOME"]})
    assert r.status_code == 200, r.text
    st = (await h.status("lazy"))["status"]
    assert st["ready"] >= 1 and st["replicas"][0]["node_id"]


async def test_from_zero_a_gpu_replica_is_forked_by_its_nodes_warm_template_with_its_gpu(
    ray_harness: Harness, ray_cluster: RayCluster, fixture_models: Path
) -> None:
    h = ray_harness
    backend = h.platform.reconciler.backend
    assert isinstance(backend, RayBackend)
    await h.deploy(
        "warmgpu",
        fixture_models / "envecho",
        mode="serverless",
        scale={"min": 0, "max": 1, "idle_timeout": 60},
        resources={"cpu": 0.5, "gpu": 1, "memory": "256Mi"},
    )

    async def warm() -> bool:
        return backend.templates.placed().get("warmgpu") == [ray_cluster.gpu.node_id]

    await eventually(warm, timeout=60)  # only the GPU node could hold one
    r = await h.predict("warmgpu", {"keys": ["CUDA_VISIBLE_DEVICES"]})
    assert r.status_code == 200, r.text
    assert r.json()["CUDA_VISIBLE_DEVICES"] in ("0", "1")  # the GPU Ray gave its host actor
    lines = (await h.http.get("/api/v1/deployments/warmgpu/logs")).json()["lines"]
    placed = [str(line) for line in lines if "placed by Ray" in str(line)]
    assert len(placed) == 1 and "forked by the node's warm template" in placed[0], placed


async def test_a_node_lost_under_load_fails_only_its_requests_and_replicas_move(
    ray_harness: Harness, ray_cluster: RayCluster, fixture_models: Path
) -> None:
    h = ray_harness
    await h.deploy(
        "moving",
        fixture_models / "asyncecho",
        scale={"replicas": 2},
        resources={"cpu": 0.5, "memory": "256Mi"},
    )
    st = await h.wait_ready("moving", 2, timeout=90)
    small_id = ray_cluster.small.node_id
    backend = h.platform.reconciler.backend
    assert isinstance(backend, RayBackend)

    async def warm_on(node_id: str) -> bool:
        return node_id in backend.templates.placed().get("moving", [])

    # A warm template of the deployment on each worker node (the head holds no CPU).
    await eventually(lambda: warm_on(small_id), timeout=60)
    await eventually(lambda: warm_on(ray_cluster.gpu.node_id), timeout=60)
    # SPREAD: one replica on each worker node (the head declares no CPU).
    assert nodes_of(st) == sorted([small_id, ray_cluster.gpu.node_id])
    burst = [asyncio.create_task(h.predict("moving", {"i": i, "delay": 3})) for i in range(16)]

    async def all_sent() -> bool:
        status = (await h.status("moving"))["status"]
        return sum(r["in_flight"] for r in status["replicas"]) == 16

    await eventually(all_sent, timeout=20)
    ray_cluster.cluster.remove_node(ray_cluster.small, allow_graceful=False)
    answers = await asyncio.gather(*burst)
    codes = Counter(r.status_code for r in answers)
    assert set(codes) == {200, 502} and sum(codes.values()) == 16, codes
    assert all(r.json()["error"] == "replica_failed" for r in answers if r.status_code == 502)

    async def moved() -> dict[str, object] | None:
        status = (await h.status("moving"))["status"]
        ids = nodes_of(status)
        return status if status["ready"] == 2 and small_id not in ids else None

    st = await eventually(moved, timeout=90)
    assert nodes_of(st) == [ray_cluster.gpu.node_id] * 2
    r = await h.predict("moving", {"i": 1})
    assert r.status_code == 200 and r.json()["i"] == 1
    # The lost node's template is gone; a node joining in its place gets one.
    assert small_id not in backend.templates.placed()["moving"]
    new_id = ray_cluster.replace_small().node_id
    await eventually(lambda: warm_on(new_id), timeout=90)
