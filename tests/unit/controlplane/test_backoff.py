from modelplane.controlplane.backoff import restart_delay


def test_first_failure_restarts_at_once_then_doubles_to_a_cap() -> None:
    assert [restart_delay(n) for n in range(1, 8)] == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert restart_delay(30) == 30.0


def test_a_replica_killed_by_a_request_does_not_grow_the_crash_loop() -> None:
    from modelplane.controlplane.backoff import failures_after_exit

    kw = {"stable_after": 10.0}
    # six requests in a row that each kill a fresh replica: no backoff ever
    failures = 0
    for _ in range(6):
        failures = failures_after_exit(failures, ran=0.1, was_ready=True, during_request=True, **kw)
        assert restart_delay(failures) == 0.0
    # a replica that dies on its own right after it came up: a loop, the count grows
    assert failures_after_exit(3, ran=0.1, was_ready=True, during_request=False, **kw) == 4
    # one that never became ready (load failures) grows it too, requests or not
    assert failures_after_exit(3, ran=0.1, was_ready=False, during_request=True, **kw) == 4
    # one that ran long enough was not in a loop
    assert failures_after_exit(5, ran=11.0, was_ready=True, during_request=False, **kw) == 1
