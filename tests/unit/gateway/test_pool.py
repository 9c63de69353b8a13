"""One deployment's pool: replica choice, the bounded wait queue, its deadline on a fake clock, the
activator limit, and what waiting requests get when the deployment goes away."""

from __future__ import annotations

from modelplane.errors import Unavailable
from modelplane.gateway.pool import DeploymentPool
from modelplane.gateway.reply import Reply
from modelplane.testing.clock import FakeClock
from modelplane.testing.replica import FakeReplica, echo


def pool(clock: FakeClock | None = None, **kw: object) -> tuple[DeploymentPool, list[str]]:
    demanded: list[str] = []
    p = DeploymentPool("echo", "ana", on_demand=demanded.append, clock=clock, **kw)  # type: ignore[arg-type]
    return p, demanded


def ask(p: DeploymentPool, body: bytes = b"{}") -> list[Reply]:
    got: list[Reply] = []
    p.submit(b"application/json", body, got.append)
    return got


def unavailable(reply: Reply) -> Unavailable:
    assert reply.status == 503 and isinstance(reply.error, Unavailable), reply.status
    return reply.error


async def test_a_request_goes_to_the_least_loaded_ready_replica() -> None:
    p, demanded = pool()
    busy, idle = FakeReplica("r1", "echo"), FakeReplica("r2", "echo")
    p.add(busy)
    p.add(idle)
    ask(p, b"1")
    ask(p, b"2")  # r1 holds one now: r2 takes this
    ask(p, b"3")  # one each: either may, but not a third on one of them
    assert [s.body for s in busy.sent][:1] == [b"1"] and [s.body for s in idle.sent][:1] == [b"2"]
    assert sorted((busy.in_flight, idle.in_flight)) == [1, 2]
    assert p.requests == 3 and p.in_flight == 3 and not p.queue and demanded == []


async def test_without_a_ready_replica_requests_wait_in_order_and_poke_the_autoscaler() -> None:
    p, demanded = pool()
    first, second = ask(p, b"a"), ask(p, b"b")
    assert first == [] and second == [] and len(p.queue) == 2 and p.in_flight == 2
    assert demanded == ["echo", "echo"]
    replica = FakeReplica("r1", "echo", auto=echo)
    p.add(replica)
    assert [s.body for s in replica.sent] == [b"a", b"b"]
    assert (first[0].body, second[0].body) == (b"a", b"b") and not p.queue


async def test_a_full_queue_answers_503_at_once_with_a_short_retry_hint() -> None:
    p, demanded = pool(queue_limit=2)
    ask(p)
    ask(p)
    [refused] = ask(p)
    error = unavailable(refused)
    assert error.retry_after == 2 and "2 requests already waiting" in error.message
    assert len(p.queue) == 2 and demanded == ["echo", "echo"]  # the refused one poked nobody


async def test_a_request_waits_exactly_queue_timeout_on_the_pools_clock() -> None:
    clock = FakeClock()
    p, _ = pool(clock, queue_timeout=10.0)
    early = ask(p)
    clock.advance(4)
    late = ask(p)
    assert p.expire_waiting(clock.now() + 5.999) == 0 and early == []
    assert p.expire_waiting(clock.advance(6)) == 1  # 10 s after the first arrived
    error = unavailable(early[0])
    assert error.retry_after == 5 and "within 10 s" in error.message
    assert late == [] and len(p.queue) == 1
    assert p.expire_waiting(clock.advance(4)) == 1 and unavailable(late[0]).retry_after == 5


async def test_the_limit_holds_requests_back_until_an_answer_frees_a_slot() -> None:
    p, _ = pool()
    replica = FakeReplica("r1", "echo")
    p.add(replica)
    p.set_limit(1)
    first, second = ask(p, b"1"), ask(p, b"2")
    assert replica.in_flight == 1 and len(p.queue) == 1 and second == []
    replica.answer(body=b"one")
    assert first[0].body == b"one"
    assert [s.body for s in replica.held] == [b"2"] and not p.queue  # released by the answer
    p.set_limit(0)
    ask(p, b"3")
    assert replica.in_flight == 2  # no limit: the replica takes everything


async def test_raising_the_limit_releases_waiting_requests_at_once() -> None:
    p, _ = pool()
    replica = FakeReplica("r1", "echo")
    p.add(replica)
    p.set_limit(1)
    for _ in range(3):
        ask(p)
    assert replica.in_flight == 1 and len(p.queue) == 2
    p.set_limit(3)
    assert replica.in_flight == 3 and not p.queue


async def test_a_removed_replica_gets_nothing_more() -> None:
    p, demanded = pool()
    replica = FakeReplica("r1", "echo")
    p.add(replica)
    p.remove(replica)
    p.remove(replica)  # twice is harmless
    waiting = ask(p)
    assert replica.sent == [] and waiting == [] and len(p.queue) == 1 and demanded == ["echo"]


async def test_closing_answers_everyone_waiting_with_the_reason() -> None:
    p, _ = pool()
    waiting = [ask(p) for _ in range(3)]
    p.close("deployment 'echo' was removed")
    for got in waiting:
        error = unavailable(got[0])
        assert error.message == "deployment 'echo' was removed" and error.retry_after == 5
    assert not p.queue and p.in_flight == 0


async def test_fail_waiting_answers_with_the_given_error_and_the_pool_stays_usable() -> None:
    p, _ = pool()
    waiting = ask(p)
    p.fail_waiting(Unavailable("model failed to load", retry_after=30))
    assert unavailable(waiting[0]).retry_after == 30
    replica = FakeReplica("r1", "echo", auto=echo)
    p.add(replica)
    assert ask(p, b"again")[0].body == b"again"
