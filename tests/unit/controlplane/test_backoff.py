from modelplane.controlplane.backoff import restart_delay


def test_first_failure_restarts_at_once_then_doubles_to_a_cap() -> None:
    assert [restart_delay(n) for n in range(1, 8)] == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert restart_delay(30) == 30.0
