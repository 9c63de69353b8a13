"""The leader lease in the store (both stores): at most one holder, takeover after expiry."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from modelplane.lease import LEADER
from modelplane.store import Store
from modelplane.store.leases import LeaseStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_first_taker_holds_renews_and_others_wait_for_expiry(store: Store) -> None:
    leases = LeaseStore(store)
    a = leases.try_take(LEADER, "a", "tcp:a:1", at(0), ttl=5)
    assert (a.holder, a.term, a.expires_at) == ("a", 1, at(5))
    b = leases.try_take(LEADER, "b", "tcp:b:1", at(1), ttl=5)
    assert b.holder == "a"  # a's lease is live: b only reads it
    a = leases.try_take(LEADER, "a", "tcp:a:1", at(2), ttl=5)
    assert (a.holder, a.term, a.expires_at) == ("a", 1, at(7))
    b = leases.try_take(LEADER, "b", "tcp:b:1", at(7), ttl=5)
    assert (b.holder, b.address, b.term) == ("b", "tcp:b:1", 2)
    again = leases.try_take(LEADER, "a", "tcp:a:1", at(8), ttl=5)
    assert again.holder == "b"  # a came back too late: it lost the lease


def test_giving_up_lets_the_next_one_in_at_once(store: Store) -> None:
    leases = LeaseStore(store)
    leases.try_take(LEADER, "a", "tcp:a:1", at(0), ttl=5)
    leases.give_up(LEADER, "a", at(1))
    assert leases.try_take(LEADER, "b", "tcp:b:1", at(1), ttl=5).holder == "b"


def test_racing_takers_of_an_expired_lease_yield_exactly_one_holder(store: Store) -> None:
    leases = LeaseStore(store)
    leases.try_take(LEADER, "old", "tcp:old:1", at(0), ttl=5)
    seen: dict[str, str] = {}
    gate = threading.Barrier(6)

    def take(me: str) -> None:
        gate.wait()
        seen[me] = leases.try_take(LEADER, me, f"tcp:{me}:1", at(10), ttl=5).holder

    threads = [threading.Thread(target=take, args=(f"p{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    holders = set(seen.values())
    assert len(seen) == 6 and len(holders) == 1
    winner = holders.pop()
    assert winner != "old" and leases.current(LEADER).holder == winner  # type: ignore[union-attr]


def test_the_shared_secret_is_made_once(store: Store) -> None:
    leases = LeaseStore(store)
    first = leases.shared_secret("relay")
    assert len(first) >= 32 and leases.shared_secret("relay") == first
    assert leases.shared_secret("other") != first
