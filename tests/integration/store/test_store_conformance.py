"""The store's contract, the same on SQLite and PostgreSQL (see conftest: every test runs twice)."""

from __future__ import annotations

import threading
from dataclasses import asdict, fields
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import StatementError

from modelplane.errors import AlreadyExists, Conflict, DeploymentNotFound, NotFound
from modelplane.store import Store, open_store
from modelplane.store.jobs import FAILED, QUEUED, RUNNING, SUCCEEDED, Job, JobStore, NewJob
from modelplane.store.users import UserStore
from modelplane.testing.clock import FakeClock

SPEC = {"name": "echo", "model": {"path": "/m"}, "mode": "dedicated"}


def job(key: str, deployment: str = "echo") -> NewJob:
    return NewJob(deployment, "ann", "in", key, "etag-" + key, "application/json", "out")


def test_migrations_are_idempotent_and_reopening_keeps_rows(store: Store, store_url: str) -> None:
    store.ensure_user("ann")
    store.create_deployment("echo", "ann", SPEC)
    again = open_store(store_url)  # runs the migrations again: nothing to do, nothing lost
    try:
        row = again.get_deployment("echo")
        assert row is not None and row.spec == SPEC and row.owner == "ann"
    finally:
        again.close()


def test_deployments_crud_and_generation(store: Store) -> None:
    store.ensure_user("ann")
    store.ensure_user("bob")
    created = store.create_deployment("echo", "ann", SPEC)
    assert created.generation == 1
    assert created.created_at.tzinfo is not None
    with pytest.raises(AlreadyExists):
        store.create_deployment("echo", "bob", SPEC)
    updated = store.update_deployment("echo", {**SPEC, "env": {"A": "1"}})
    assert updated.generation == 2
    assert updated.updated_at >= created.updated_at
    store.create_deployment("abc", "bob", {**SPEC, "name": "abc"})
    assert [d.name for d in store.list_deployments()] == ["abc", "echo"]
    assert [d.name for d in store.list_deployments(owner="ann")] == ["echo"]
    with pytest.raises(DeploymentNotFound):
        store.update_deployment("nope", SPEC)
    assert store.delete_deployment("echo") is True
    assert store.delete_deployment("echo") is False
    assert store.get_deployment("echo") is None


def test_json_spec_round_trips_nested_values(store: Store) -> None:
    store.ensure_user("ann")
    spec = {**SPEC, "env": {"ü": "ß", "n": "1"}, "resources": {"cpu": 0.5, "gpu": 2}}
    store.create_deployment("echo", "ann", spec)
    row = store.get_deployment("echo")
    assert row is not None and row.spec == spec


def test_events_keep_their_order_and_go_with_the_deployment(store: Store) -> None:
    store.ensure_user("ann")
    store.create_deployment("echo", "ann", SPEC)
    for i in range(5):
        store.add_event("echo", "crashed", f"exit {i}", replica=f"r{i}")
    events = store.events("echo", limit=3)
    assert [e.message for e in events] == ["exit 2", "exit 3", "exit 4"]
    assert all(e.at.tzinfo is not None for e in events)
    store.delete_deployment("echo")
    assert store.events("echo") == []


def test_naive_datetimes_are_refused(store: Store) -> None:
    store.ensure_user("ann")
    with pytest.raises(StatementError, match="naive datetime"):
        UserStore(store).create_token("ann", "h" * 64, expires_at=datetime(2030, 1, 1))


def test_users_tokens_and_principals(store: Store) -> None:
    users = UserStore(store)
    users.create_user("ann", quotas={"cpu": 4})
    with pytest.raises(AlreadyExists):
        users.create_user("ann")
    assert users.get_user("ann").quotas == {"cpu": 4}  # type: ignore[union-attr]
    users.set_quotas("ann", {"gpu": 1})
    assert users.get_user("ann").quotas == {"gpu": 1}  # type: ignore[union-attr]
    live = users.create_token("ann", "a" * 64, name="laptop")
    scoped = users.create_token("ann", "b" * 64, deployment="echo")
    users.create_token("ann", "c" * 64, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    principal = users.principal_for("a" * 64)
    assert principal is not None and principal.user == "ann" and principal.deployment is None
    assert users.principal_for("b" * 64).deployment == "echo"  # type: ignore[union-attr]
    assert users.principal_for("c" * 64) is None  # expired
    assert users.principal_for("z" * 64) is None
    assert users.revoke_token(live.id) is True
    assert users.revoke_token(live.id) is False
    assert users.principal_for("a" * 64) is None
    assert users.revoke_deployment_tokens("echo") == 1
    assert users.principal_for("b" * 64) is None
    with pytest.raises(NotFound, match="user 'nobody' does not exist"):
        users.create_token("nobody", "d" * 64)
    assert scoped.id != live.id


def test_a_user_who_owns_things_cannot_be_deleted(store: Store) -> None:
    users = UserStore(store)
    users.create_user("ann")
    store.create_deployment("echo", "ann", SPEC)
    with pytest.raises(Conflict, match="echo"):
        users.delete_user("ann")
    store.delete_deployment("echo")
    users.delete_user("ann")
    assert users.get_user("ann") is None
    assert users.count_deployments("ann") == 0


def test_buckets_have_one_owner(store: Store) -> None:
    store.ensure_user("ann")
    store.ensure_user("bob")
    jobs = JobStore(store)
    assert jobs.claim_bucket("in", "ann") == "ann"
    assert jobs.claim_bucket("in", "bob") == "ann"
    assert jobs.bucket_owner("in") == "ann"
    assert [b.name for b in jobs.buckets("bob")] == []
    jobs.forget_bucket("in")
    assert jobs.bucket_owner("in") is None


def test_enqueue_is_idempotent_per_input_object(store: Store) -> None:
    jobs = JobStore(store)
    first, created = jobs.enqueue(job("a.json"))
    again, created_again = jobs.enqueue(job("a.json"))
    assert created and not created_again
    assert again.id == first.id
    assert jobs.counts() == {"echo": {QUEUED: 1}}


def test_many_jobs_are_stored_as_one_at_a_time_would_be(store: Store) -> None:
    """enqueue_many and succeed_many write the driver's SQL themselves: what they store reads
    back as the ORM wrote it (aware UTC times to the microsecond), over more rows than one
    statement takes, with duplicates inside the call and against earlier calls."""
    clock = FakeClock(wall=1_800_000_000.123456)
    jobs = JobStore(store, clock)
    made = jobs.enqueue_many([job(f"k{i:04d}") for i in range(200)] + [job("k0007")])
    assert [new for _, new in made] == [True] * 200 + [False]
    assert made[200][0].id == made[7][0].id
    again = jobs.enqueue_many([job("k0001"), job("fresh")])
    assert [new for _, new in again] == [False, True] and again[0][0].id == made[1][0].id
    when = datetime(2027, 1, 15, 8, 0, 0, 123456, tzinfo=UTC)
    row = jobs.get(made[0][0].id)
    assert row is not None and row.created_at == when
    assert (row.state, row.attempts, row.max_attempts, row.content_type) == (
        QUEUED,
        0,
        3,
        "application/json",
    )

    claimed = jobs.claim("echo", "r1", lease=30, limit=300)
    assert len(claimed) == 201
    # A claim hands out what it set without reading it back: the same as the stored rows.
    for j in (claimed[0], claimed[-1]):
        stored = jobs.get(j.id)
        assert stored is not None
        assert {f.name: getattr(stored, f.name) for f in fields(Job)} == asdict(j)
    assert claimed[0].started_at == when and claimed[0].state == RUNNING
    assert claimed[0].lease_expires_at == when + timedelta(seconds=30)
    clock.advance(2.5)
    jobs.succeed_many("r1", [(j.id, f"{j.input_key}.out") for j in claimed[:150]])
    jobs.succeed_many("r2", [(j.id, "stolen") for j in claimed[150:]])  # not r2's to finish
    assert jobs.counts() == {"echo": {SUCCEEDED: 150, RUNNING: 51}}
    done = jobs.get(claimed[0].id)
    assert done is not None
    assert (done.output_key, done.lease_owner, done.lease_expires_at, done.error) == (
        f"{claimed[0].input_key}.out",
        None,
        None,
        None,
    )
    assert done.finished_at == when + timedelta(seconds=2.5)


def test_claim_succeed_fail_retry_and_dead_letter(store: Store) -> None:
    jobs = JobStore(store)
    a, _ = jobs.enqueue(job("a"))
    b, _ = jobs.enqueue(job("b"))
    claimed = jobs.claim("echo", "r1", lease=30, limit=10)
    assert [j.id for j in claimed] == [a.id, b.id]
    assert all(j.state == RUNNING and j.attempts == 1 for j in claimed)
    assert jobs.claim("echo", "r2", lease=30, limit=10) == []
    assert jobs.succeed(a.id, "r2", "out/a") is False  # not the holder
    assert jobs.succeed(a.id, "r1", "out/a") is True
    assert jobs.fail(b.id, "r1", "boom", retry_in=0) == QUEUED
    again = jobs.claim("echo", "r2", lease=30, limit=10)
    assert [j.id for j in again] == [b.id] and again[0].attempts == 2
    assert jobs.fail(b.id, "r2", "bad input", retry_in=None) == FAILED
    assert jobs.counts() == {"echo": {SUCCEEDED: 1, FAILED: 1}}
    done = jobs.get(a.id)
    assert done is not None and done.output_key == "out/a" and done.finished_at is not None


def test_an_expired_lease_is_claimed_again_and_a_heartbeat_keeps_it(store: Store) -> None:
    jobs = JobStore(store)
    a, _ = jobs.enqueue(job("a"))
    now = datetime.now(UTC)
    jobs.claim("echo", "r1", lease=10, limit=1, now=now)
    assert jobs.claim("echo", "r2", lease=10, limit=1, now=now + timedelta(seconds=5)) == []
    taken = jobs.claim("echo", "r2", lease=10, limit=1, now=now + timedelta(seconds=11))
    assert [j.id for j in taken] == [a.id] and taken[0].lease_owner == "r2"
    assert jobs.succeed(a.id, "r1", "x") is False  # the first runner lost it


def test_release_of_one_runner_leaves_the_others_jobs(store: Store) -> None:
    jobs = JobStore(store)
    for key in "abcd":
        jobs.enqueue(job(key))
    jobs.claim("echo", "r1", lease=30, limit=2)
    jobs.claim("echo", "r2", lease=30, limit=2)
    assert jobs.release_all("r1") == 2
    assert jobs.counts()["echo"] == {QUEUED: 2, RUNNING: 2}


def test_concurrent_claims_never_take_a_job_twice(store: Store) -> None:
    """Eight runners in threads, each with its own connection, claim from one queue."""
    jobs = JobStore(store)
    n = 60
    for i in range(n):
        jobs.enqueue(job(f"k{i:03d}"))
    taken: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def runner(name: str) -> None:
        mine: list[str] = []
        try:
            start.wait()
            while True:
                got = jobs.claim("echo", name, lease=60, limit=3)
                if not got:
                    break
                mine.extend(j.id for j in got)
        except BaseException as exc:  # surfaced below, with the runner's name
            errors.append(exc)
        taken[name] = mine

    threads = [threading.Thread(target=runner, args=(f"r{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    every = [j for ids in taken.values() for j in ids]
    assert len(every) == n
    assert len(set(every)) == n
    assert jobs.counts()["echo"] == {RUNNING: n}
