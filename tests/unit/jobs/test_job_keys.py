"""Where a job's result goes and when a failed input is tried again: pure functions."""

from __future__ import annotations

import pytest

from modelplane.errors import (
    InvalidInput,
    ModelFailed,
    ReplicaFailed,
    TooManyRequests,
    Unavailable,
)
from modelplane.jobs.keys import failure_message, output_key, retry_delay, retry_in


@pytest.mark.parametrize(
    ("content_type", "key"),
    [
        ("application/json", "in/a.png.json"),
        ("Application/JSON; charset=utf-8", "in/a.png.json"),
        ("text/plain", "in/a.png.txt"),
        ("image/jpeg", "in/a.png.jpg"),
        ("application/pdf", "in/a.png.pdf"),  # not ours: the mimetypes table
        ("application/x-made-up", "in/a.png.out"),  # nobody knows it
        ("", "in/a.png.out"),
    ],
)
def test_the_output_key_is_the_input_key_plus_the_results_extension(
    content_type: str, key: str
) -> None:
    assert output_key("in/a.png", content_type) == key


def test_the_backoff_doubles_from_the_base_and_stops_at_the_cap() -> None:
    assert [retry_delay(n) for n in range(7)] == [1, 1, 2, 4, 8, 16, 32]
    assert retry_delay(7) == 60 and retry_delay(50) == 60
    assert retry_delay(3, base=0.5, cap=1.5) == 1.5 and retry_delay(2, base=0.5) == 1.0


def test_an_inputs_own_fault_is_never_retried() -> None:
    assert retry_in(InvalidInput("not a number"), 1) is None


@pytest.mark.parametrize(
    ("error", "attempts", "delay"),
    [
        (ReplicaFailed("replica exited"), 1, 1.0),  # no hint: the backoff alone
        (ReplicaFailed("replica exited"), 3, 4.0),
        (ModelFailed("predict raised"), 2, 2.0),
        (Unavailable("no replica in time", retry_after=5), 1, 5.0),  # the hint is longer
        (Unavailable("no replica in time", retry_after=5), 5, 16.0),  # the backoff is longer
        (TooManyRequests("slow down", retry_after=3), 1, 3.0),  # a 4xx that says when
    ],
)
def test_a_retry_waits_the_backoff_and_never_less_than_the_errors_retry_after(
    error: Exception, attempts: int, delay: float
) -> None:
    assert retry_in(error, attempts) == delay  # type: ignore[arg-type]


def test_the_base_scales_the_backoff_but_not_the_hint() -> None:
    assert retry_in(ReplicaFailed("x"), 3, base=0.01) == pytest.approx(0.04)
    assert retry_in(Unavailable("x", retry_after=2), 3, base=0.01) == 2.0


def test_a_failure_is_one_line_with_its_status() -> None:
    assert failure_message(Unavailable("no replica in time")) == "503: no replica in time"
