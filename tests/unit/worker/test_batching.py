"""Dynamic request batching in a replica: when batches are sent, and who gets what back."""

from __future__ import annotations

from typing import Any

import pytest

from modelplane.errors import ModelFailed
from modelplane.model.contract import BatchPolicy, LoadedModel, ModelMetadata
from modelplane.worker.batching import Batcher, flush_delay


class Timers:
    """A hand-driven clock and timer list standing in for the event loop."""

    def __init__(self) -> None:
        self.now = 100.0
        self.armed: list[tuple[float, Any]] = []

    def call_later(self, delay: float, fn: Any) -> Any:
        timers = self

        class Handle:
            cancelled = False

            def cancel(self) -> None:
                self.cancelled = True
                timers.armed = [(d, f) for d, f in timers.armed if f is not fn]

        self.armed.append((self.now + delay, fn))
        return Handle()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [(at, fn) for at, fn in self.armed if at <= self.now]
        self.armed = [(at, fn) for at, fn in self.armed if at > self.now]
        for _, fn in due:
            fn()


class Doubler:
    def __init__(self) -> None:
        self.calls: list[list[Any]] = []

    def predict(self, x: Any) -> Any:
        return x * 2

    def predict_batch(self, xs: list[Any]) -> list[Any]:
        self.calls.append(list(xs))
        return [ValueError(f"bad {x}") if x == "bad" else x * 2 for x in xs]


def make(instance: Any, max_size: int = 4, max_wait_ms: float = 10.0) -> tuple[Batcher, Timers]:
    timers = Timers()
    model = LoadedModel(
        instance, ModelMetadata(name="m", batch=BatchPolicy(max_size, max_wait_ms))
    )
    batcher = Batcher(
        model, now=lambda: timers.now, call_later=timers.call_later, spawn=lambda c: c.close()
    )
    return batcher, timers


def collect() -> tuple[dict[int, Any], Any]:
    got: dict[int, Any] = {}

    def for_item(i: int) -> tuple[Any, Any]:
        return (lambda out: got.__setitem__(i, ("ok", out)), lambda exc: got.__setitem__(i, exc))

    return got, for_item


def test_flush_delay_is_zero_when_full_and_counts_down_from_the_first_input() -> None:
    policy = BatchPolicy(max_size=8, max_wait_ms=20)
    assert flush_delay(policy, 8, first_at=1.0, now=1.0) == 0.0
    assert flush_delay(policy, 3, first_at=1.0, now=1.0) == pytest.approx(0.020)
    assert flush_delay(policy, 3, first_at=1.0, now=1.015) == pytest.approx(0.005)
    assert flush_delay(policy, 3, first_at=1.0, now=2.0) == 0.0


def test_a_full_batch_goes_at_once_in_arrival_order() -> None:
    model = Doubler()
    batcher, timers = make(model, max_size=3)
    got, item = collect()
    for i in range(3):
        batcher.add(i, *item(i))
    assert model.calls == [[0, 1, 2]]
    assert got == {0: ("ok", 0), 1: ("ok", 2), 2: ("ok", 4)}
    assert timers.armed == []


def test_a_partial_batch_waits_max_wait_ms_and_not_longer() -> None:
    model = Doubler()
    batcher, timers = make(model, max_size=10, max_wait_ms=10)
    got, item = collect()
    batcher.add(1, *item(1))
    timers.advance(0.004)
    batcher.add(2, *item(2))
    timers.advance(0.0059)
    assert model.calls == []  # 9.9 ms after the first input: still gathering
    timers.advance(0.0002)
    assert model.calls == [[1, 2]]
    assert got == {1: ("ok", 2), 2: ("ok", 4)}


def test_one_bad_item_fails_alone() -> None:
    batcher, _ = make(Doubler(), max_size=3)
    got, item = collect()
    for i, x in enumerate([1, "bad", 3]):
        batcher.add(x, *item(i))
    assert got[0] == ("ok", 2) and got[2] == ("ok", 6)
    assert isinstance(got[1], ValueError) and str(got[1]) == "bad bad"


class Broken:
    def __init__(self, result: Any = None, raises: bool = False) -> None:
        self.result, self.raises = result, raises

    def predict(self, x: Any) -> Any:
        return x

    def predict_batch(self, xs: list[Any]) -> Any:
        if self.raises:
            raise RuntimeError("boom")
        return self.result


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (Broken(result=[1]), "returned 1 outputs for 2 inputs"),
        (Broken(result={"a": 1}), "returned a dict, not a list of 2 outputs"),
        (Broken(result="ab"), "returned a str, not a list of 2 outputs"),
    ],
)
def test_a_batch_of_the_wrong_shape_fails_every_caller_with_a_clear_error(
    model: Broken, message: str
) -> None:
    batcher, _ = make(model, max_size=2)
    got, item = collect()
    batcher.add("x", *item(0))
    batcher.add("y", *item(1))
    assert all(isinstance(e, ModelFailed) and message in e.message for e in got.values())
    assert len(got) == 2


def test_predict_batch_raising_fails_every_caller_of_that_batch_only() -> None:
    model = Broken(raises=True)
    batcher, timers = make(model, max_size=2)
    got, item = collect()
    batcher.add("x", *item(0))
    batcher.add("y", *item(1))
    assert [type(e) for e in got.values()] == [RuntimeError, RuntimeError]
    model.raises, model.result = False, ["z"]
    batcher.add("z", *item(2))
    timers.advance(1)
    assert got[2] == ("ok", "z")


def test_flush_sends_what_is_pending_and_disarms_the_timer() -> None:
    model = Doubler()
    batcher, timers = make(model, max_size=10)
    got, item = collect()
    batcher.add(5, *item(0))
    batcher.flush()
    assert got == {0: ("ok", 10)}
    timers.advance(1)
    assert model.calls == [[5]]


def test_a_batch_policy_without_predict_batch_is_refused() -> None:
    class Plain:
        def predict(self, x: Any) -> Any:
            return x

    with pytest.raises(TypeError, match="has no predict_batch"):
        LoadedModel(Plain(), ModelMetadata(name="p", batch=BatchPolicy(4)))


@pytest.mark.parametrize(
    ("size", "wait", "match"),
    [(0, 1, "max_size must be between"), (True, 1, "whole number"), (4, -1, "max_wait_ms")],
)
def test_impossible_policies_name_the_field(size: Any, wait: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BatchPolicy(size, wait)
