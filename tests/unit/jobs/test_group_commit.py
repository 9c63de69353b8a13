"""GroupCommit: concurrent submissions share one call; each caller gets its own results."""

from __future__ import annotations

import asyncio
import threading

import pytest
from tests.polling import eventually

from modelplane.jobs.group import GroupCommit


async def test_a_lone_submission_runs_at_once_and_gets_its_results() -> None:
    calls: list[list[int]] = []

    def double(items: list[int]) -> list[int]:
        calls.append(items)
        return [2 * i for i in items]

    group = GroupCommit(double)
    assert await group.submit([1, 2]) == [2, 4]
    assert calls == [[1, 2]]


async def test_submissions_made_while_a_call_runs_go_in_the_next_call_together() -> None:
    release = threading.Event()
    calls: list[list[int]] = []

    def slow(items: list[int]) -> list[int]:
        calls.append(list(items))
        if len(calls) == 1:
            release.wait(5)
        return [i * 10 for i in items]

    group = GroupCommit(slow)
    first = asyncio.ensure_future(group.submit([1]))
    await eventually(lambda: calls, timeout=5, interval=0.001)  # the first call, in its thread
    rest = [asyncio.ensure_future(group.submit([i, i + 100])) for i in range(2, 6)]
    await asyncio.sleep(0)
    release.set()
    assert await first == [10]
    assert [await r for r in rest] == [[i * 10, (i + 100) * 10] for i in range(2, 6)]
    assert calls == [[1], [2, 102, 3, 103, 4, 104, 5, 105]]
    assert group.groups == 2


async def test_a_failed_call_fails_every_caller_of_its_group_and_not_the_next() -> None:
    release = threading.Event()
    seen: list[list[str]] = []

    def flaky(items: list[str]) -> list[str]:
        seen.append(items)
        if len(seen) == 1:
            release.wait(5)
            return items
        if len(seen) == 2:
            raise OSError("disk full")
        return [s.upper() for s in items]

    group = GroupCommit(flaky)
    first = asyncio.ensure_future(group.submit(["a"]))
    await eventually(lambda: seen, timeout=5, interval=0.001)  # the first call, in its thread
    doomed = [asyncio.ensure_future(group.submit([x])) for x in "bc"]
    await asyncio.sleep(0)
    release.set()
    assert await first == ["a"]
    for d in doomed:
        with pytest.raises(OSError, match="disk full"):
            await d
    assert await group.submit(["d"]) == ["D"]


async def test_groups_stop_at_max_items_but_a_big_submission_still_goes_whole() -> None:
    release = threading.Event()
    calls: list[int] = []

    def count(items: list[int]) -> list[int]:
        calls.append(len(items))
        if len(calls) == 1:
            release.wait(5)
        return items

    group = GroupCommit(count, max_items=3)
    first = asyncio.ensure_future(group.submit([0]))
    await eventually(lambda: calls, timeout=5, interval=0.001)  # the first call, in its thread
    waiting = [asyncio.ensure_future(group.submit(list(range(n)))) for n in (2, 1, 5, 1)]
    await asyncio.sleep(0)
    release.set()
    await first
    assert [len(await w) for w in waiting] == [2, 1, 5, 1]
    assert calls == [1, 3, 5, 1]


async def test_a_wrong_number_of_results_is_an_error_not_a_mismatch() -> None:
    group: GroupCommit[int, int] = GroupCommit(lambda items: items[:-1])
    with pytest.raises(RuntimeError, match="1 results for 2 items"):
        await group.submit([1, 2])


async def test_with_two_lanes_two_calls_run_at_once_and_the_rest_wait_for_a_free_lane() -> None:
    release = threading.Event()
    calls: list[list[int]] = []
    lock = threading.Lock()

    def slow(items: list[int]) -> list[int]:
        with lock:
            calls.append(list(items))
            first_two = len(calls) <= 2
        if first_two:
            release.wait(5)
        return [-i for i in items]

    group = GroupCommit(slow, lanes=2)
    a = asyncio.ensure_future(group.submit([1]))
    await eventually(lambda: calls, timeout=5, interval=0.001)
    b = asyncio.ensure_future(group.submit([2]))
    await eventually(lambda: len(calls) == 2, timeout=5, interval=0.001)  # both in their threads
    rest = [asyncio.ensure_future(group.submit([i])) for i in (3, 4, 5)]
    await asyncio.sleep(0)
    assert len(calls) == 2  # no third lane
    release.set()
    assert [await a, await b] == [[-1], [-2]]
    assert [await r for r in rest] == [[-3], [-4], [-5]]
    assert sorted(calls[:2]) == [[1], [2]] and calls[2:] == [[3, 4, 5]]


async def test_one_submission_after_another_each_finds_a_lane() -> None:
    group: GroupCommit[int, int] = GroupCommit(lambda items: [i + 1 for i in items], lanes=2)
    for i in range(50):  # each right after the previous call's committer left its loop
        assert await group.submit([i]) == [i + 1]
    assert group.groups == 50
