"""Quotas and the job-queue bound: pure."""

from __future__ import annotations

import pytest

from modelplane.errors import InvalidInput, TooManyRequests
from modelplane.resources.amounts import Usage
from modelplane.resources.quota import Quota, check_job_queue, over_quota

GiB = 2**30


def test_within_and_over_quota() -> None:
    quota = Quota(cpu=4, memory=4 * GiB, gpu=1, deployments=2)
    assert over_quota(quota, Usage(2, GiB, 0), Usage(2, 3 * GiB, 1)) == []
    short = over_quota(quota, Usage(3, GiB, 1), Usage(2, GiB, 1))
    assert {s.resource: s.short_by for s in short} == {"cpu": 1, "gpu": 1}
    assert short[1].describe("left in the quota") == (
        "gpu: needs 1 GPU, 0 GPUs left in the quota of 1 GPU (short by 1 GPU)"
    )


def test_deployment_count() -> None:
    quota = Quota(deployments=2)
    assert over_quota(quota, Usage(), Usage(), deployments=1, new_deployments=1) == []
    [short] = over_quota(quota, Usage(), Usage(), deployments=2, new_deployments=1)
    assert short.resource == "deployments" and short.short_by == 1


def test_unlimited_by_default() -> None:
    assert over_quota(Quota(), Usage(1e6, 2**50, 64), Usage(1e6, 2**50, 64), 1000, 1) == []


def test_from_dict_validates_and_parses_sizes() -> None:
    assert Quota.from_dict({"memory": "2Gi", "cpu": 1}).to_dict() == {"cpu": 1.0, "memory": 2 * GiB}
    assert Quota.from_dict(None) == Quota()
    with pytest.raises(InvalidInput, match=r"quotas\.gpu"):
        Quota.from_dict({"gpu": -1})
    with pytest.raises(InvalidInput, match="unknown field"):
        Quota.from_dict({"gpus": 1})


def test_job_queue_hook() -> None:
    check_job_queue("m", 9, 10)
    check_job_queue("m", 10_000, None)
    with pytest.raises(TooManyRequests) as caught:
        check_job_queue("m", 10, 10)
    assert caught.value.status == 429 and caught.value.retry_after > 0
    assert "10 jobs queued" in caught.value.message
