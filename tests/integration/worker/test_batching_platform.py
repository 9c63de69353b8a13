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
    # 24 callers at once with max_size 8: the replica sees them in batches, never more than 8
    # at a time. (How full each batch is depends on how fast the callers arrive; the exact
    # gathering rules are tested on an injected clock in tests/unit/worker/test_batching.py.)
    assert 1 < max(sizes) <= 8
    assert sum(sizes) / len(sizes) > 1

    # Schema checks still happen per request, before batching.
    bad = await harness.predict("sum", {"values": "nope"})
    assert bad.status_code == 400
    assert "values" in bad.json()["message"]
