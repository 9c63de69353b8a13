"""The data plane's one entry: auth, rate limit, queueing, metrics and typed errors, with fake
replicas and a fake clock (no process, no socket)."""

from __future__ import annotations

import orjson
import pytest

from modelplane.errors import (
    DeploymentNotFound,
    ModelFailed,
    ReplicaFailed,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
)
from modelplane.gateway.dataplane import DataPlane
from modelplane.gateway.reply import PredictRequest, Reply
from modelplane.metrics import Metrics
from modelplane.resources.ratelimit import RateLimiter
from modelplane.security import PLATFORM, Principal
from modelplane.testing.clock import FakeClock
from modelplane.testing.replica import FakeReplica, echo

ANA = Principal("ana", token=7)
BOB = Principal("bob", token=8)
TOKENS = {b"Bearer ana": ANA, b"Bearer bob": BOB}


def plane(**kw: object) -> DataPlane:
    dp = DataPlane(TOKENS.get, Metrics(), **kw)  # type: ignore[arg-type]
    dp.add_deployment("echo", "ana")
    return dp


def connect(dp: DataPlane, replica: FakeReplica) -> FakeReplica:
    dp.expect(replica.replica_id, replica.deployment, "s3cret")
    dp.on_hello(replica, {"secret": "s3cret"})  # type: ignore[arg-type]
    return replica


def ask(
    dp: DataPlane, name: str = "echo", auth: bytes = b"Bearer ana", **kw: object
) -> list[Reply]:
    got: list[Reply] = []
    dp.submit(
        name, PredictRequest(b"application/json", b'{"x": 1}', authorization=auth, **kw), got.append
    )  # type: ignore[arg-type]
    return got


async def test_a_prediction_reaches_a_replica_and_comes_back_as_sent() -> None:
    dp = plane()
    replica = connect(dp, FakeReplica("r1", "echo", auto=echo))
    [reply] = ask(dp, meta=b"oip\x00n=echo")
    assert (reply.status, reply.content_type, reply.body) == (200, b"application/json", b'{"x": 1}')
    assert reply.error is None and replica.sent[0].meta == b"oip\x00n=echo"
    assert dp.metrics.requests.count("echo") == 1


async def test_refusals_are_typed_and_reach_no_replica() -> None:
    dp = plane()
    replica = connect(dp, FakeReplica("r1", "echo", auto=echo))
    [no_token] = ask(dp, auth=b"")
    [not_yours] = ask(dp, auth=b"Bearer bob")
    [missing] = ask(dp, name="nope")
    assert isinstance(no_token.error, Unauthenticated) and no_token.status == 401
    assert isinstance(not_yours.error, DeploymentNotFound) and not_yours.status == 404
    assert isinstance(missing.error, DeploymentNotFound)
    assert replica.sent == [] and dp.metrics.requests.count("echo") == 0


async def test_the_rate_limit_is_counted_once_per_prediction_on_the_injected_clock() -> None:
    clock = FakeClock()
    dp = plane(limiter=RateLimiter(2), clock=clock)
    connect(dp, FakeReplica("r1", "echo", auto=echo))
    assert [r.status for r in ask(dp) + ask(dp)] == [200, 200]
    [limited] = ask(dp)
    assert isinstance(limited.error, TooManyRequests)
    assert limited.error.retry_after == pytest.approx(0.5)
    assert limited.error.retry_after_header == "1"
    clock.advance(0.5)
    assert ask(dp)[0].status == 200


async def test_a_known_principal_is_not_held_to_ownership_but_to_existence() -> None:
    dp = plane()
    connect(dp, FakeReplica("r1", "echo", auto=echo))
    [ok] = ask(dp, auth=b"", principal=PLATFORM)
    [missing] = ask(dp, name="nope", auth=b"", principal=PLATFORM)
    assert ok.status == 200 and isinstance(missing.error, DeploymentNotFound)


async def test_waiting_requests_get_the_real_retry_after_of_why_they_failed() -> None:
    dp = plane()
    waiting = ask(dp)
    assert waiting == [] and dp.queued("echo") == 1
    dp.fail_waiting("echo", Unavailable("cannot load", retry_after=7.5))
    [reply] = waiting
    assert isinstance(reply.error, Unavailable) and reply.body == b""
    assert reply.error.retry_after_header == "8"
    assert dp.metrics.requests.count("echo") == 1


async def test_a_waiting_request_goes_to_the_replica_that_says_hello() -> None:
    dp = plane()
    waiting = ask(dp)
    replica = connect(dp, FakeReplica("r1", "echo"))
    replica.answer(body=b'{"y": 2}')
    assert [r.body for r in waiting] == [b'{"y": 2}'] and dp.queued("echo") == 0


async def test_a_replica_error_is_passed_through_and_typed_on_demand() -> None:
    dp = plane()
    replica = connect(dp, FakeReplica("r1", "echo"))
    got = ask(dp)
    body = orjson.dumps(ModelFailed("boom", model="echo").to_dict())
    replica.answer(500, b"application/json", body)
    [reply] = got
    assert reply.body == body  # the replica's bytes, for the native edge
    assert isinstance(reply.error, ModelFailed) and reply.error.message == "boom"
    assert reply.error.retryable


async def test_a_replica_that_dies_answers_502_typed() -> None:
    dp = plane()
    replica = connect(dp, FakeReplica("r1", "echo"))
    got = ask(dp)
    replica.die()
    assert isinstance(got[0].error, ReplicaFailed) and got[0].status == 502


async def test_predict_awaits_the_same_entry() -> None:
    dp = plane()
    connect(dp, FakeReplica("r1", "echo", auto=echo))
    reply = await dp.predict("echo", PredictRequest(b"text/plain", b"hi", principal=ANA))
    assert reply.body == b"hi" and reply.content_type == b"text/plain"


async def test_stop_replica_says_whether_it_was_connected() -> None:
    dp = plane()
    replica = connect(dp, FakeReplica("r1", "echo", auto=echo))
    dp.expect("r2", "echo", "other")
    assert dp.stop_replica("r1") is True and replica.stopped
    assert dp.stop_replica("r2") is False
    assert dp.ready_count("echo") == 0
