"""Two platform processes' worth of platform on one real PostgreSQL store, in one event loop.

(The SIGKILL failover with jobs, across real processes, is tests/e2e/test_platform_failover.py.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.conftest import Harness, start_platform
from tests.polling import eventually

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


async def test_any_process_answers_and_the_follower_takes_over(
    tmp_path: Path, examples: Path, postgres_url: str
) -> None:
    a = await start_platform(tmp_path / "a", store_url=postgres_url, lease_ttl=1.5)
    b = await start_platform(tmp_path / "b", store_url=postgres_url, lease_ttl=1.5)
    ha, hb = Harness(a), Harness(b)
    a_running = True
    # b's admin token is its own (another data dir); both are valid on the shared store.
    try:
        assert (a.role, b.role) == ("leader", "follower")
        health = (await hb.http.get("/api/v1/health")).json()
        assert health["role"] == "follower" and health["leader"] == a.listener.tcp_address
        await hb.deploy("echo", examples / "echo", scale={"replicas": 2})  # created on b
        st = await hb.wait_ready("echo", 2)  # status through b: the leader's view, relayed
        assert len({r["pid"] for r in st["replicas"]}) == 2
        answers = await asyncio.gather(*(hb.predict("echo", {"i": i}) for i in range(40)))
        assert [r.json()["i"] for r in answers] == list(range(40))
        assert (await ha.predict("echo", {"i": -1})).json()["i"] == -1
        assert not b.reconciler.deployments  # b started no replica of its own
        served = sum(r["served"] for r in (await ha.status("echo"))["status"]["replicas"])
        assert served == 41  # all of them went through the leader's replicas

        await ha.http.aclose()
        a_running = False
        await a.stop()  # gives the lease up: b takes over without waiting for the ttl

        async def b_leads() -> bool:
            return b.role == "leader"

        await eventually(b_leads, timeout=10)
        st = await hb.wait_ready("echo", 2)
        r = await hb.predict("echo", {"i": 99})
        assert r.status_code == 200 and r.json()["i"] == 99
        assert len(b.reconciler.deployments["echo"].replicas) == 2
    finally:
        await hb.http.aclose()
        await b.stop()
        if a_running:
            await ha.http.aclose()
            await a.stop()
