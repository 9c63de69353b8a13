"""Dynamic batching end to end: concurrent callers share predict_batch calls on a real replica."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration
MODEL = Path(__file__).parents[2] / "fixtures" / "models" / "batchsum"


async def test_concurrent_requests_are_batched_and_each_caller_gets_its_own_answer(
    harness: Harness,
) -> None:
    await harness.deploy("sum", MODEL, scale={"replicas": 1})
    await harness.wait_ready("sum")
    bodies = [{"values": [i, i, -1]} if i % 5 == 3 else {"values": [i, i]} for i in range(24)]
    replies = await asyncio.gather(*(harness.predict("sum", b) for b in bodies))
    sizes = []
    for i, r in enumerate(replies):
        if i % 5 == 3:
            assert r.status_code == 500, r.text
            assert "ValueError: negative values are not allowed" in r.json()["message"]
        else:
            assert r.status_code == 200, r.text
            assert r.json()["sum"] == 2 * i
            sizes.append(r.json()["batch_size"])
    # 24 callers at once with max_size 8: the replica sees full batches, not one at a time.
    assert max(sizes) == 8
    assert sum(1 for s in sizes if s == 1) < len(sizes) // 2

    # Schema checks still happen per request, before batching.
    bad = await harness.predict("sum", {"values": "nope"})
    assert bad.status_code == 400
    assert "values" in bad.json()["message"]
