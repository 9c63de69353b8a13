"""Load and abuse: idle floods, slow-loris clients and a connection cap do not stop normal
requests being answered promptly. Real sockets on loopback, the real HTTP layer."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from tests.integration.gateway.conftest import RawClient, Servers
from tests.integration.gateway.test_http_layer import Echo, get
from tests.polling import eventually

pytestmark = pytest.mark.integration
PROMPT = 0.5
"""Seconds a normal request may take while the server is under the flood (it takes ~1 ms)."""


async def timed_get(servers: Servers, addr: tuple[str, int], path: str) -> float:
    client = await servers.connect(addr)
    t0 = time.perf_counter()
    await client.send(get(path))
    resp = await client.response()
    assert resp.status == 200 and orjson.loads(resp.body)["url"] == path
    client.close()
    return time.perf_counter() - t0


async def test_2000_idle_connections_and_slow_loris_clients_leave_normal_requests_prompt(
    servers: Servers,
) -> None:
    addr = await servers.start(Echo(), keepalive_timeout=30, read_timeout=2)
    idle: list[RawClient] = []
    for start in range(0, 2000, 200):  # opened in waves so the listen backlog keeps up
        idle += await asyncio.gather(*(servers.connect(addr) for _ in range(200)))
        del start
    lorises = [await servers.connect(addr) for _ in range(20)]
    for loris in lorises:
        await loris.send(b"GET /loris HTTP/1.1\r\nHost: t\r\n")

    async def trickle(c: RawClient) -> None:
        for i in range(1000):
            await c.send(f"X-{i}: v\r\n".encode())
            await asyncio.sleep(0.1)

    feeders = [asyncio.create_task(trickle(c)) for c in lorises]
    try:
        latencies = [await timed_get(servers, addr, f"/normal/{i}") for i in range(30)]
        # the slow-loris clients are cut off by the read timeout, whatever they keep sending
        statuses = [(await c.response(timeout=5)).status for c in lorises]
    finally:
        for f in feeders:
            f.cancel()
    assert max(latencies) < PROMPT, f"slowest normal request: {max(latencies):.3f} s"
    assert statuses == [408] * len(lorises)
    # the idle ones are still open (their keep-alive timeout is 30 s): the server held 2,000
    assert len(idle) == 2000


async def test_connections_over_the_cap_get_503_at_once_and_room_comes_back(
    servers: Servers,
) -> None:
    addr = await servers.start(Echo(), max_connections=50, keepalive_timeout=30)
    held = [await servers.connect(addr) for _ in range(50)]
    await held[0].send(get("/warm"))  # the server has accepted them all
    assert (await held[0].response()).status == 200
    extra = await servers.connect(addr)
    resp = await extra.response()
    assert resp.status == 503
    assert "50 connections open" in orjson.loads(resp.body)["message"]
    assert resp.headers[b"connection"] == b"close"
    for c in held[:10]:
        c.close()

    async def admitted() -> bool:
        c = await servers.connect(addr)
        await c.send(get("/again"))
        return (await c.response()).status == 200

    await eventually(admitted, timeout=3, what="closed connections making room")
