"""Poll with a deadline: the one way our tests wait for something another process or task does.

``wait_until`` (blocking) and ``eventually`` (async) call ``check`` until it returns something
truthy and hand that value back, or fail with the last value seen once ``timeout`` seconds have
passed. They wait for real work (a replica starting, a job finishing); time that a test merely
needs to pass is a fake clock's business, never theirs.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def _failure(timeout: float, what: str, last: object) -> AssertionError:
    subject = what or "condition"
    return AssertionError(f"{subject} not met within {timeout} s; last value: {last!r}")


def wait_until(
    check: Callable[[], T], *, timeout: float = 20.0, interval: float = 0.05, what: str = ""
) -> T:
    """Call ``check`` every ``interval`` seconds until it returns a truthy value, and return it."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise _failure(timeout, what, last)
        time.sleep(interval)


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str = "",
) -> T:
    """:func:`wait_until` on the event loop; ``check`` may be a plain or an async function."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        last: T = await result if inspect.isawaitable(result) else result  # type: ignore[assignment]
        if last:
            return last
        if loop.time() >= deadline:
            raise _failure(timeout, what, last)
        await asyncio.sleep(interval)
