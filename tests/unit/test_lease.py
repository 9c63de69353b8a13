"""The leader lease as a pure decision: fake wall times, no store, no sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelplane.lease import Lease, Role, decide, may_take

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TTL = 6.0


def lease(holder: str, expires_in: float, term: int = 1) -> Lease:
    return Lease("leader", holder, f"tcp:{holder}:1", term, T0 + timedelta(seconds=expires_in))


def test_anyone_may_take_a_free_or_expired_lease_only_its_holder_a_live_one() -> None:
    assert may_take(None, "a", T0)
    assert may_take(lease("a", 5), "a", T0)
    assert not may_take(lease("b", 5), "a", T0)
    assert may_take(lease("b", 0), "a", T0)  # expires exactly now: gone
    assert may_take(lease("b", -1), "a", T0)


def test_holding_a_fresh_lease_is_leading_and_renewing_at_a_third_of_the_ttl() -> None:
    d = decide(lease("a", TTL), "a", T0, ttl=TTL, was_leader=False)
    assert d.role is Role.leader and not d.deposed
    assert d.next_try_in == TTL / 3


def test_another_live_holder_makes_us_follow_it() -> None:
    d = decide(lease("b", 3), "a", T0, ttl=TTL, was_leader=False)
    assert d.role is Role.follower and d.leader is not None and d.leader.holder == "b"
    assert not d.deposed


def test_a_leader_that_finds_someone_else_holding_is_deposed() -> None:
    d = decide(lease("b", TTL, term=2), "a", T0, ttl=TTL, was_leader=True)
    assert d.role is Role.follower and d.deposed


def test_a_leader_whose_own_lease_is_about_to_run_out_steps_down() -> None:
    # Renewals failed (store unreachable): with less than half a renewal period left, stop.
    d = decide(lease("a", 0.9), "a", T0, ttl=TTL, was_leader=True)
    assert d.role is Role.follower and d.deposed and d.leader is None


def test_an_expired_lease_of_someone_else_is_nobody_leading() -> None:
    d = decide(lease("b", -0.5), "a", T0, ttl=TTL, was_leader=False)
    assert d.role is Role.follower and d.leader is None
