"""Dedicated deployments end to end: real replica processes behind the real gateway."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from tests.integration.conftest import Harness, start_platform
from tests.polling import eventually

pytestmark = pytest.mark.integration


async def test_two_replicas_serve_and_share_load(harness: Harness, examples: Path) -> None:
    await harness.deploy("echo", examples / "echo", scale={"replicas": 2})
    st = await harness.wait_ready("echo", 2)
    assert st["desired"] == 2 and len({r["pid"] for r in st["replicas"]}) == 2
    responses = await asyncio.gather(
        *(harness.predict("echo", {"i": i, "nested": {"x": [1, 2]}}) for i in range(200))
    )
    assert [r.json()["i"] for r in responses] == list(range(200))
    st = (await harness.status("echo"))["status"]
    served = sorted(r["served"] for r in st["replicas"])
    assert sum(served) == 200
    assert served[0] > 0, "least-in-flight choice should use both replicas under concurrency"
    assert st["requests"] == 200


async def test_requests_sent_before_ready_wait_and_are_answered(
    harness: Harness, fixture_models: Path
) -> None:
    await harness.deploy("slow", fixture_models / "slowload", env={"LOAD_SECONDS": "1.0"})
    responses = await asyncio.gather(*(harness.predict("slow", {"n": i}) for i in range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    assert [r.json()["echo"]["n"] for r in responses] == list(range(20))


async def test_model_error_is_500_and_replica_keeps_serving(
    harness: Harness, fixture_models: Path
) -> None:
    await harness.deploy("faulty", fixture_models / "faulty")
    await harness.wait_ready("faulty")
    pid = (await harness.predict("faulty", {})).json()["pid"]
    r = await harness.predict("faulty", {"raise": "bad pixel at 3,4"})
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == "model_error"
    assert "ValueError: bad pixel at 3,4" in body["message"]
    assert "faulty" in body["message"]
    r = await harness.predict("faulty", {})
    assert r.status_code == 200 and r.json()["pid"] == pid
    st = (await harness.status("faulty"))["status"]
    assert st["restarts"] == 0


async def test_unserialisable_output_is_a_model_error(
    harness: Harness, fixture_models: Path
) -> None:
    await harness.deploy("faulty", fixture_models / "faulty")
    await harness.wait_ready("faulty")
    r = await harness.predict("faulty", {"bad_output": True})
    assert r.status_code == 500
    assert "cannot be sent as JSON" in r.json()["message"]


async def test_replica_that_dies_mid_request_gets_502_and_is_replaced(
    harness: Harness, fixture_models: Path
) -> None:
    await harness.deploy("faulty", fixture_models / "faulty")
    await harness.wait_ready("faulty")
    first = (await harness.predict("faulty", {})).json()["pid"]
    r = await harness.predict("faulty", {"exit": 7})
    assert r.status_code == 502
    assert r.json()["error"] == "replica_failed"

    async def replaced() -> int | None:
        r = await harness.predict("faulty", {})
        return r.json()["pid"] if r.status_code == 200 else None

    second = await eventually(replaced)
    assert second != first
    st = await harness.status("faulty")
    assert st["status"]["restarts"] == 1
    assert "exited with code 7 while handling a request" in st["status"]["last_error"]
    assert any(e["kind"] == "request_crash" for e in st["events"])


async def test_misbehaving_replies_never_cost_the_replica(
    harness: Harness, fixture_models: Path
) -> None:
    await harness.deploy("faulty", fixture_models / "faulty")
    await harness.wait_ready("faulty")
    pid = (await harness.predict("faulty", {})).json()["pid"]
    expected = {
        "int_keys": 200,
        "set": 200,
        "nan": 200,
        "big": 200,
        "object": 500,
        "cycle": 500,
        "tolist": 500,
        "broken_str": 500,
        "system_exit": 500,
        "keyboard": 500,
    }
    for kind, status in expected.items():
        r = await harness.predict("faulty", {"misbehave": kind})
        assert r.status_code == status, (kind, r.text[:200])
        if status == 500:
            assert r.json()["error"] == "model_error", kind
    assert (await harness.predict("faulty", {"misbehave": "int_keys"})).json()["0"] == [
        "Not a valid number."
    ]
    r = await harness.predict("faulty", {})
    assert r.status_code == 200 and r.json()["pid"] == pid
    assert (await harness.status("faulty"))["status"]["restarts"] == 0
    logs = (await harness.http.get("/api/v1/deployments/faulty/logs?tail=2000")).json()
    text = "\n".join(logs["lines"])
    assert "Traceback (most recent call last)" in text
    assert "SystemExit: 4" in text


async def test_requests_that_kill_replicas_are_not_a_crash_loop(
    harness: Harness, fixture_models: Path
) -> None:
    await harness.deploy("faulty", fixture_models / "faulty")
    await harness.wait_ready("faulty")
    for _ in range(6):
        assert (await harness.predict("faulty", {"exit": 9})).status_code == 502
        await harness.wait_ready("faulty")
    st = await harness.status("faulty")
    assert st["status"]["restarts"] == 6
    assert st["status"]["state"] == "running"
    notes = [e for e in st["events"] if e["kind"] == "request_crash"]
    assert len(notes) == 6
    r = await harness.predict("faulty", {})
    assert r.status_code == 200
    lines = (await harness.http.get("/api/v1/deployments/faulty/logs?tail=500")).json()
    text = "\n".join(lines["lines"])
    assert text.count("while handling a request; replacing it in 0.0 s") == 6


async def test_killed_replica_is_replaced(harness: Harness, examples: Path) -> None:
    await harness.deploy("echo", examples / "echo")
    st = await harness.wait_ready("echo")
    pid = st["replicas"][0]["pid"]
    os.kill(pid, signal.SIGKILL)

    async def new_replica() -> dict | None:
        s = (await harness.status("echo"))["status"]
        pids = [r["pid"] for r in s["replicas"] if r["state"] == "ready"]
        return s if pids and pid not in pids else None

    s = await eventually(new_replica)
    assert "SIGKILL" in s["last_error"]
    assert (await harness.predict("echo", {"a": 1})).json() == {"a": 1}


async def test_replica_over_memory_limit_is_stopped_and_reported(
    harness: Harness, fixture_models: Path
) -> None:
    await harness.deploy("faulty", fixture_models / "faulty", resources={"memory": "120Mi"})
    await harness.wait_ready("faulty")
    r = await harness.predict("faulty", {"allocate_mb": 300, "sleep": 5})
    assert r.status_code == 502

    async def reported() -> dict | None:
        st = await harness.status("faulty")
        return st if any(e["kind"] == "oom_killed" for e in st["events"]) else None

    st = await eventually(reported)
    assert "over its memory limit of 120 MiB" in st["status"]["last_error"]
    await harness.wait_ready("faulty")


async def test_model_that_cannot_load_is_reported_with_backoff(
    harness: Harness, fixture_models: Path
) -> None:
    await harness.deploy("broken", fixture_models / "broken")

    async def failing() -> dict | None:
        st = (await harness.status("broken"))["status"]
        return st if st["restarts"] >= 3 else None

    st = await eventually(failing)
    assert st["state"] == "failing"
    assert "model failed to load: RuntimeError: weights file missing" in st["last_error"]
    logs = (await harness.http.get("/api/v1/deployments/broken/logs")).json()["lines"]
    assert any("Traceback" in line for line in logs)
    assert any("weights file missing" in line for line in logs)
    # That the backoff grows (0, 0.5, 1, 2 s ...) is the reconciler's decision, tested on a fake
    # clock: test_crash_loop_backs_off_on_the_injected_clock in tests/unit/controlplane.


async def test_logs_hold_the_models_own_output(harness: Harness, fixture_models: Path) -> None:
    await harness.deploy("faulty", fixture_models / "faulty")
    await harness.wait_ready("faulty")
    await harness.predict("faulty", {"print": "hello from the model"})

    async def logged() -> list[str] | None:
        lines = (await harness.http.get("/api/v1/deployments/faulty/logs")).json()["lines"]
        return lines if any("to stderr: hello from the model" in x for x in lines) else None

    lines = await eventually(logged)
    assert any(line.endswith("hello from the model") for line in lines)
    assert any("faulty model loaded" in line for line in lines)


async def test_update_rolls_replicas_to_the_new_spec(harness: Harness, examples: Path) -> None:
    created = await harness.deploy("echo", examples / "echo", scale={"replicas": 1})
    await harness.wait_ready("echo", 1)
    spec = created["spec"] | {"scale": {"replicas": 3}}
    r = await harness.http.put("/api/v1/deployments/echo", json=spec)
    assert r.status_code == 200 and r.json()["generation"] == 2
    st = await harness.wait_ready("echo", 3)
    assert st["desired"] == 3


async def test_delete_stops_replicas(harness: Harness, examples: Path) -> None:
    await harness.deploy("echo", examples / "echo", scale={"replicas": 2})
    st = await harness.wait_ready("echo", 2)
    pids = [r["pid"] for r in st["replicas"]]
    assert (await harness.http.delete("/api/v1/deployments/echo")).status_code == 204
    assert (await harness.predict("echo", {})).status_code == 404

    async def gone() -> bool:
        return not any(Path(f"/proc/{p}").exists() and _alive(p) for p in pids)

    await eventually(gone)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


async def test_deployments_come_back_after_a_restart(tmp_path: Path, examples: Path) -> None:
    data = tmp_path / "data"
    platform = await start_platform(data)
    h = Harness(platform)
    await h.deploy("echo", examples / "echo", scale={"replicas": 2})
    await h.wait_ready("echo", 2)
    token = platform.admin_token
    await h.http.aclose()
    await platform.stop()

    platform = await start_platform(data)
    try:
        assert platform.admin_token == token, "the admin token survives a restart"
        h = Harness(platform)
        st = await h.wait_ready("echo", 2)
        assert st["desired"] == 2
        assert (await h.predict("echo", {"back": True})).json() == {"back": True}
        await h.http.aclose()
    finally:
        await platform.stop()


async def test_metrics_count_requests_and_replicas(harness: Harness, examples: Path) -> None:
    await harness.deploy("echo", examples / "echo")
    await harness.wait_ready("echo")
    for _ in range(3):
        await harness.predict("echo", {})
    await harness.predict("echo-nope", {})
    text = (await harness.http.get("/metrics")).text
    assert 'modelplane_requests_total{code="200",deployment="echo"} 3.0' in text
    assert 'modelplane_request_seconds_count{deployment="echo"} 3.0' in text
    assert 'modelplane_replicas{deployment="echo",state="ready"} 1.0' in text
