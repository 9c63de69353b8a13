"""The replica lifecycle decider: starts, stops and waits, decided on a fake clock."""

from __future__ import annotations

from modelplane.controlplane.lifecycle import (
    CrashHistory,
    EnvironmentFailed,
    Exit,
    ReplicaView,
    Start,
    Stop,
    WaitUntil,
    after_exit,
    decide,
    describe_exit,
    memory_stops,
    not_placed,
)
from modelplane.testing.clock import FakeClock

MiB = 2**20


def _replicas(*states: str, load: tuple[int, ...] = ()) -> list[ReplicaView]:
    loads = load or (0,) * len(states)
    return [
        ReplicaView(f"r{i}", s, load=n) for i, (s, n) in enumerate(zip(states, loads, strict=True))
    ]


# -- toward the wanted count ---------------------------------------------------------------------
def test_missing_replicas_start_cold_from_zero_and_warm_beside_a_ready_one() -> None:
    now = FakeClock().now()
    assert decide(2, [], CrashHistory(), now) == [Start(cold=True), Start(cold=True)]
    assert decide(3, _replicas("ready"), CrashHistory(), now) == [Start(False), Start(False)]
    # a replica still starting is not ready: what starts beside it is a cold start too
    assert decide(2, _replicas("starting"), CrashHistory(), now) == [Start(cold=True)]


def test_enough_replicas_means_nothing_to_do_and_stopping_ones_do_not_count() -> None:
    now = FakeClock().now()
    assert decide(2, _replicas("ready", "starting"), CrashHistory(), now) == []
    assert decide(2, _replicas("ready", "stopping"), CrashHistory(), now) == [Start(False)]
    # one whose connection dropped is still live until its exit is seen
    assert decide(1, _replicas("exiting"), CrashHistory(), now) == []


def test_scale_down_stops_starting_ones_first_then_the_least_loaded() -> None:
    now = FakeClock().now()
    replicas = _replicas("ready", "ready", "starting", "ready", load=(3, 0, 0, 1))
    assert decide(2, replicas, CrashHistory(), now) == [
        Stop("r2", "scaled down"),
        Stop("r1", "scaled down"),
    ]
    everything = decide(0, replicas, CrashHistory(), now)
    assert everything == [Stop(r, "scaled down") for r in ("r2", "r1", "r3", "r0")]


def test_the_crash_backoff_holds_starts_until_it_ends() -> None:
    clock = FakeClock()
    history = CrashHistory(failures=3, restarts=3, next_start_at=clock.now() + 2.0)
    assert decide(1, [], history, clock.now()) == [WaitUntil(history.next_start_at)]
    clock.advance(1.999)
    assert decide(1, [], history, clock.now()) == [WaitUntil(history.next_start_at)]
    clock.advance(0.001)
    assert decide(1, [], history, clock.now()) == [Start(cold=True)]
    # the backoff never delays a scale-down
    assert decide(0, _replicas("ready"), history, 0.0) == [Stop("r0", "scaled down")]


def test_nothing_starts_while_the_environment_builds_and_a_failed_build_is_reported() -> None:
    now = FakeClock().now()
    building = {"state": "building"}
    assert decide(1, [], CrashHistory(), now, environment=building) == []
    failed = {"state": "failed", "error": "no wheel for torch"}
    assert decide(1, [], CrashHistory(), now, environment=failed) == [
        EnvironmentFailed("the model's environment could not be built: no wheel for torch")
    ]
    ready = {"state": "ready"}
    assert decide(1, [], CrashHistory(), now, environment=ready) == [Start(cold=True)]
    # enough replicas: the environment's state does not matter
    assert decide(1, _replicas("ready"), CrashHistory(), now, environment=failed) == []


# -- memory policing -----------------------------------------------------------------------------
def test_replicas_over_their_memory_limit_are_stopped_at_once() -> None:
    replicas = [
        ReplicaView("under", "ready", memory=64 * MiB),
        ReplicaView("over", "ready", memory=100 * MiB),
        ReplicaView("unknown", "starting", memory=None),
        ReplicaView("already", "stopping", memory=500 * MiB),
    ]
    assert memory_stops(64 * MiB, replicas) == [
        Stop(
            "over",
            "over its memory limit",
            grace=0,
            oom="replica over used 100 MiB, over its memory limit of 64 MiB, and was stopped",
        )
    ]


# -- after an exit -------------------------------------------------------------------------------
def test_a_replica_asked_to_stop_is_no_crash() -> None:
    gone = Exit("r1", -15, started_at=0.0, ready_at=1.0, stop_requested=True)
    assert after_exit(gone, CrashHistory(failures=2, restarts=4), 5.0) is None


def test_a_crash_loop_backs_off_doubling_then_a_long_run_resets_it() -> None:
    clock = FakeClock()
    history = CrashHistory()
    delays = []
    for _ in range(6):  # each replica dies 0.1 s after it was started, never ready
        started = clock.now()
        clock.advance(0.1)
        crash = after_exit(Exit("r", 1, started_at=started), history, clock.now())
        assert crash is not None and crash.kind == "crashed"
        assert crash.reason == "replica r exited with code 1"
        history = crash.history
        assert history.next_start_at == clock.now() + crash.delay
        delays.append(crash.delay)
        clock.advance(crash.delay)
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0]
    assert history.restarts == 6 and history.failures == 6
    # one that served for longer than 10 s was not in a loop: back to an immediate restart
    started = clock.now()
    clock.advance(11.0)
    crash = after_exit(
        Exit("r", 1, started_at=started, ready_at=started + 0.5), history, clock.now()
    )
    assert crash is not None and crash.delay == 0.0
    assert crash.history == CrashHistory(failures=1, restarts=7, next_start_at=clock.now())


def test_a_replica_killed_by_a_request_restarts_at_once_and_says_so() -> None:
    history = CrashHistory(failures=1, restarts=1)
    for _ in range(4):
        gone = Exit("r", -9, started_at=0.0, ready_at=0.2, during_request=True)
        crash = after_exit(gone, history, 0.3)
        assert crash is not None
        assert (crash.kind, crash.delay) == ("request_crash", 0.0)
        assert crash.reason == "replica r was killed by SIGKILL while handling a request"
        history = crash.history
    assert history.restarts == 5


def test_kinds_of_crash_and_which_fail_the_waiting_requests() -> None:
    fresh = CrashHistory()
    over = Exit("r", -9, started_at=0.0, stop_requested=True, oom=True, error="used 9 MiB")
    oom = after_exit(over, fresh, 1.0)
    assert oom is not None
    assert (oom.kind, oom.reason, oom.fails_waiting) == ("oom_killed", "used 9 MiB", False)
    load = after_exit(Exit("r", 1, started_at=0.0, error="model failed to load"), fresh, 1.0)
    assert load is not None and (load.kind, load.fails_waiting) == ("load_failed", True)
    never = after_exit(Exit("r", None, started_at=0.0), fresh, 1.0)
    assert never is not None and never.reason == "replica r could not be started"


def test_exit_codes_in_words() -> None:
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-15) == "was killed by SIGTERM"
    assert describe_exit(-200) == "was killed by signal 200"
    assert describe_exit(None) == "could not be started"


def test_a_new_spec_forgets_the_crash_loop_but_not_the_restarts() -> None:
    assert CrashHistory(failures=5, restarts=9, next_start_at=99.0).reset() == CrashHistory(
        restarts=9
    )


# -- no room (reservations) ----------------------------------------------------------------------
def test_a_refused_reservation_is_announced_once_and_answers_waiters_only_at_zero() -> None:
    first = not_placed(None, "over the owner's quota", live=0)
    assert first.message == "replica not started: over the owner's quota"
    assert first.announce and first.fails_waiting
    again = not_placed(first.message, "over the owner's quota", live=0)
    assert not again.announce and again.fails_waiting
    beside_others = not_placed(first.message, "node full", live=2)
    assert beside_others.announce and not beside_others.fails_waiting
