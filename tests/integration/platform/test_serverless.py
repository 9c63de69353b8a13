"""Serverless deployments: zero replicas at rest, cold starts, bursts, back to zero."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from modelplane.testing.clock import FakeClock
from tests.integration.conftest import Harness
from tests.polling import eventually

pytestmark = pytest.mark.integration

FAST = {"stable_window": 2.0, "autoscale_interval": 0.05}


async def deploy_serverless(h: Harness, name: str, path: Path, **scale: Any) -> None:
    body: dict[str, Any] = {"name": name, "model": {"path": str(path)}}
    env = scale.pop("env", None)
    if env:
        body["env"] = env
    body["scale"] = scale
    r = await h.http.post("/api/v1/deployments", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["mode"] == "serverless", "serverless is the default mode"


@pytest.mark.parametrize("platform_settings", [FAST])
async def test_no_replica_at_rest_then_a_cold_start(harness: Harness, examples: Path) -> None:
    await deploy_serverless(harness, "echo", examples / "echo")
    st = (await harness.status("echo"))["status"]
    assert st["desired"] == 0 and st["replicas"] == [] and st["state"] == "idle"
    r = await harness.predict("echo", {"first": True})
    assert r.status_code == 200 and r.json() == {"first": True}
    st = await harness.status("echo")
    assert len(st["status"]["cold_starts"]) == 1
    assert st["status"]["cold_starts"][0]["seconds"] > 0
    assert st["status"]["autoscaler"]["history"][0]["replicas"] == 1
    kinds = [e["kind"] for e in st["events"]]
    assert "cold_start" in kinds and "scale" in kinds


@pytest.mark.parametrize("platform_settings", [FAST])
async def test_requests_during_a_cold_start_all_wait_and_are_answered(
    harness: Harness, fixture_models: Path
) -> None:
    await deploy_serverless(
        harness, "slow", fixture_models / "slowload", max=2, env={"LOAD_SECONDS": "0.5"}
    )
    responses = await asyncio.gather(*(harness.predict("slow", {"n": i}) for i in range(30)))
    assert [r.status_code for r in responses] == [200] * 30
    assert sorted(r.json()["echo"]["n"] for r in responses) == list(range(30))


def _fake_time() -> dict[str, Any]:
    """FAST, on a fake clock the test moves itself (idle periods pass in no time)."""
    return {**FAST, "clock": FakeClock(wall=time.time())}


@pytest.mark.parametrize("platform_settings", [_fake_time()])
async def test_burst_scales_to_max_then_back_to_zero(
    harness: Harness, fixture_models: Path
) -> None:
    await deploy_serverless(
        harness, "faulty", fixture_models / "faulty", max=4, target_concurrency=1, idle_timeout=600
    )
    responses = await asyncio.gather(
        *(harness.predict("faulty", {"sleep": 0.05}) for _ in range(64))
    )
    assert [r.status_code for r in responses] == [200] * 64
    per_replica = Counter(r.json()["pid"] for r in responses)
    assert len(per_replica) == 4, "the burst should have been spread over max replicas"
    # A forked replica is ready in milliseconds, long before the others; the gateway must
    # not pile the whole burst onto it.
    assert min(per_replica.values()) >= 6, per_replica
    # Quiet on the platform's clock: halved at each decision, never to zero before the ten
    # minutes of idle_timeout have passed, then zero at the exact millisecond.
    assert await harness.idle_for("faulty", 300) == 2
    assert await harness.idle_for("faulty", 300 - 0.001) == 1
    assert await harness.idle_for("faulty", 0.001) == 0

    async def at_zero() -> bool:
        st = (await harness.status("faulty"))["status"]
        return not st["replicas"]

    await eventually(at_zero, timeout=20)
    st = await harness.status("faulty")
    history = [h["replicas"] for h in st["status"]["autoscaler"]["history"]]
    assert max(history) == 4 and history[-3:] == [2, 1, 0]


@pytest.mark.parametrize("platform_settings", [FAST])
async def test_a_model_that_cannot_load_fails_fast_with_503(
    harness: Harness, fixture_models: Path
) -> None:
    await deploy_serverless(harness, "broken", fixture_models / "broken")
    started = time.monotonic()
    r = await harness.predict("broken", {})
    assert r.status_code == 503
    assert time.monotonic() - started < 10, "not after the whole queue timeout"
    assert "weights file missing" in r.json()["message"]
    # the crash backoff of a first failure (0 s, sent as at least 1 s), not a fixed figure
    assert r.headers["retry-after"] == "1"
    st = (await harness.status("broken"))["status"]
    assert "model failed to load" in st["last_error"]


@pytest.mark.parametrize("platform_settings", [{**FAST, "queue_limit": 3}])
async def test_full_queue_answers_503_at_once(harness: Harness, fixture_models: Path) -> None:
    await deploy_serverless(harness, "slow", fixture_models / "slowload", env={"LOAD_SECONDS": "2"})
    responses = await asyncio.gather(*(harness.predict("slow", {"n": i}) for i in range(8)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 3 + [503] * 5
    rejected = next(r for r in responses if r.status_code == 503)
    assert "already waiting" in rejected.json()["message"] and "retry-after" in rejected.headers


@pytest.mark.parametrize("platform_settings", [{**FAST, "request_timeout": 0.5}])
async def test_a_request_the_replica_holds_too_long_gets_504(
    harness: Harness, fixture_models: Path
) -> None:
    await deploy_serverless(harness, "faulty", fixture_models / "faulty")
    r = await harness.predict("faulty", {"sleep": 3})
    assert r.status_code == 504
    assert "did not answer within 0.5 s" in r.json()["message"]


@pytest.mark.parametrize("platform_settings", [_fake_time()])
async def test_without_warm_template_nothing_stays_at_zero(
    harness: Harness, examples: Path
) -> None:
    await deploy_serverless(harness, "echo", examples / "echo", warm_template=False)
    assert (await harness.predict("echo", [1])).json() == [1]
    backend = harness.platform.reconciler.backend
    assert not backend._templates  # type: ignore[attr-defined]
    assert await harness.idle_for("echo") == 0

    async def at_zero() -> bool:
        return not (await harness.status("echo"))["status"]["replicas"]

    await eventually(at_zero)


@pytest.mark.parametrize("platform_settings", [FAST])
async def test_warm_template_makes_cold_starts_fast(harness: Harness, examples: Path) -> None:
    await deploy_serverless(harness, "digits", examples / "digits", idle_timeout=0.5)
    # The first cold start trains and caches the classifier; later ones load the cache.
    # (A real clock: the cold starts' seconds are what this test measures.)
    assert (await harness.predict("digits", {"image": [[0] * 8] * 8})).status_code == 200

    async def at_zero() -> bool:
        return not (await harness.status("digits"))["status"]["replicas"]

    await eventually(at_zero)
    assert (await harness.predict("digits", {"image": [[0] * 8] * 8})).status_code == 200
    colds = (await harness.status("digits"))["status"]["cold_starts"]
    assert len(colds) == 2
    # A fresh interpreter importing scikit-learn takes about a second here; a fork of the
    # template that already imported it, plus loading the cached model, takes far less.
    assert colds[1]["seconds"] < 0.5, colds
