"""Dynamic request batching inside a replica.

A model that declares ``batch: {max_size, max_wait_ms}`` and implements
``predict_batch(list_of_inputs) -> list_of_outputs`` receives the requests that are in the
replica at the same time in one call: synchronous predictions, jobs and batch runs alike, since
they all reach the replica as frames. A batch goes to the model when it holds ``max_size``
inputs or ``max_wait_ms`` after its first input arrived, whichever is first. Each caller gets
its own answer; an exception object in the returned list fails that caller alone.

The decision of when to send is :func:`flush_delay`, a pure function of the policy, the batch's
size, when its first input arrived and ``now``; :class:`Batcher` only keeps the pending inputs,
asks it, and arms one timer through the loop it is given, so tests drive time explicitly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from modelplane.errors import ModelFailed
from modelplane.model.contract import BatchPolicy, LoadedModel

Done = Callable[[Any], None]
Failed = Callable[[BaseException], None]


def flush_delay(policy: BatchPolicy, size: int, first_at: float, now: float) -> float:
    """Seconds to wait before sending a batch of ``size`` inputs; 0 means send now."""
    if size >= policy.max_size:
        return 0.0
    return max(0.0, first_at + policy.max_wait_ms / 1000.0 - now)


@dataclass(slots=True)
class _Item:
    inputs: Any
    done: Done
    failed: Failed


class Batcher:
    """Gathers a replica's concurrent inputs into ``predict_batch`` calls.

    ``call_later(delay, fn)`` arms the timer (the running loop's by default) and ``now`` reads
    the clock it counts in; both are parameters so tests run without real waiting.
    """

    def __init__(
        self,
        model: LoadedModel,
        *,
        now: Callable[[], float] = time.monotonic,
        call_later: Callable[[float, Callable[[], None]], Any] | None = None,
        spawn: Callable[[Any], Any] | None = None,
    ) -> None:
        if model.batch is None:
            raise ValueError(f"model {model.metadata.name!r} has no batch policy")
        self.model = model
        self.policy: BatchPolicy = model.batch
        self._now = now
        loop = asyncio.get_running_loop() if call_later is None or spawn is None else None
        self._call_later = call_later or loop.call_later  # type: ignore[union-attr]
        self._spawn = spawn or loop.create_task  # type: ignore[union-attr]
        self._pending: list[_Item] = []
        self._first_at = 0.0
        self._timer: Any = None
        self.batches = 0
        """How many batches were sent to the model (for tests and the replica's stats)."""

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, inputs: Any, done: Done, failed: Failed) -> None:
        """Queue one input; ``done(output)`` or ``failed(exception)`` is called exactly once."""
        if not self._pending:
            self._first_at = self._now()
        self._pending.append(_Item(inputs, done, failed))
        delay = flush_delay(self.policy, len(self._pending), self._first_at, self._now())
        if delay == 0.0:
            self.flush()
        elif self._timer is None:
            self._timer = self._call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._pending:
            self.flush()

    def flush(self) -> None:
        """Send what is pending now (also used when the replica is asked to stop)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, self._pending = self._pending, []
        if not items:
            return
        self.batches += 1
        try:
            result = self.model.call_batch([item.inputs for item in items])
        except BaseException as exc:  # SystemExit too: a model never ends a replica
            _fail_all(items, exc)
            return
        if self.model.batch_is_async:
            self._spawn(self._finish(items, result))
        else:
            self._deliver(items, result)

    async def _finish(self, items: list[_Item], pending: Any) -> None:
        try:
            result = await pending
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            _fail_all(items, exc)
        else:
            self._deliver(items, result)

    def _deliver(self, items: list[_Item], outputs: Any) -> None:
        name = self.model.metadata.name
        if not isinstance(outputs, Sequence) or isinstance(outputs, str | bytes | bytearray):
            problem = ModelFailed(
                f"model {name!r}: predict_batch returned a {type(outputs).__name__}, "
                f"not a list of {len(items)} outputs",
                hint="return one output per input, in the order of the inputs",
                model=name,
            )
            _fail_all(items, problem)
            return
        if len(outputs) != len(items):
            problem = ModelFailed(
                f"model {name!r}: predict_batch returned {len(outputs)} outputs "
                f"for {len(items)} inputs",
                hint="return one output per input, in the order of the inputs",
                model=name,
            )
            _fail_all(items, problem)
            return
        for item, output in zip(items, outputs, strict=True):
            if isinstance(output, BaseException):
                item.failed(output)
            else:
                item.done(output)


def _fail_all(items: list[_Item], exc: BaseException) -> None:
    for item in items:
        item.failed(exc)
