"""Server-side batch runs: every input of a folder or bucket prefix, through the data plane.

A run lists its inputs and the results already written, and sends the inputs without a result
straight to the deployment's replicas — the pool that synchronous predictions use, so no HTTP
per item — keeping at most ``concurrency`` of them in flight. Inputs are read and results
written in groups by a worker thread, one hop per group rather than one per file; the event
loop only moves bytes between the two sides and the replicas.

Durability: results are named after their inputs (:func:`modelplane.jobs.keys.output_key`), so
what is done is what has a result. A run that stops (the platform killed, a restart) is claimed
again and lists again: it redoes at most the items that were in flight, and their results are
overwritten, never duplicated. Progress counters and failed inputs are checkpointed every
``checkpoint_interval``. A 4xx fails an input at once (the input is bad); a 5xx is retried after
a backoff up to ``max_attempts``; failed inputs are kept with their errors and retried on
request.

A run may bring its own deployment (``ephemeral``): a dedicated deployment made from a model
folder when the run starts and removed when it ends, however it ends, with the replica-seconds
(and GPU-seconds) it held recorded on the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from modelplane.errors import InsufficientStorage, Timeout, Unavailable
from modelplane.gateway.reply import OnReply, Reply
from modelplane.jobs.keys import failure_message, output_key, retry_in
from modelplane.storage.sides import Side, pending
from modelplane.store.batches import CANCELLED, BatchStore
from modelplane.store.models import BatchRow

log = logging.getLogger("modelplane.batches")

DEFAULT_CONCURRENCY = 64
"""Inputs a run keeps in flight unless its options say otherwise."""

Submit = Callable[[str, bytes, bytes, OnReply], bool]
"""``submit(deployment, content_type, body, on_reply) -> False if the deployment is gone``: the
data plane's entry, as the platform."""


@dataclass
class Ephemeral:
    """How a run makes and removes the deployment it brings."""

    create: Callable[[BatchRow], Awaitable[dict[str, Any]]]
    """Create the run's deployment; returns its spec (as stored)."""
    remove: Callable[[str], Awaitable[None]]


@dataclass
class _Progress:
    total: int = 0
    done: int = 0
    skipped: int = 0
    failures: list[tuple[str, str, int]] = field(default_factory=list)
    in_flight: int = 0
    retrying: int = 0
    cancelled: bool = False


class BatchRunner:
    def __init__(
        self,
        batches: BatchStore,
        submit: Submit,
        sides: Callable[[BatchRow], tuple[Side, Side]],
        *,
        ephemeral: Ephemeral | None = None,
        now: Callable[[], float] | None = None,
        lease: float = 30.0,
        interval: float = 1.0,
        checkpoint_interval: float = 0.5,
        group: int = 64,
        linger: float = 0.05,
        max_attempts: int = 3,
        retry_base: float = 1.0,
    ) -> None:
        self.batches = batches
        self.submit = submit
        self.sides = sides
        self.ephemeral = ephemeral
        self._now = now
        self.lease = lease
        self.interval = interval
        self.checkpoint_interval = checkpoint_interval
        self.group = group
        self.linger = linger
        """Seconds results wait to be written with others (unless ``group`` are waiting)."""
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.runner_id = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._running: dict[str, asyncio.Task[None]] = {}
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._wake = asyncio.Event()
        self._closing = False

    def now(self) -> float:
        return self._now() if self._now is not None else asyncio.get_running_loop().time()

    def wake(self) -> None:
        self._wake.set()

    def ended(self, batch_id: str) -> asyncio.Future[None]:
        """A future that resolves once run ``batch_id`` ends in this process (its final state
        is in the store by then), for a caller that waits for the end instead of polling.
        Cancel it when no longer waited for; a run executed by another platform process on a
        shared store never resolves it."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(batch_id, set()).add(fut)

        def drop(f: asyncio.Future[None]) -> None:
            waiting = self._waiters.get(batch_id)
            if waiting is not None:
                waiting.discard(f)
                if not waiting:
                    del self._waiters[batch_id]

        fut.add_done_callback(drop)
        return fut

    async def run(self) -> None:
        released = await asyncio.to_thread(self.batches.release_all)
        if released:
            log.info("resuming %d batch runs that were running when the platform stopped", released)
        while not self._closing:
            try:
                claimed = await asyncio.to_thread(self.batches.claim, self.runner_id, self.lease, 8)
                for row in claimed:
                    if row.id not in self._running:
                        task = asyncio.create_task(self._execute(row))
                        self._running[row.id] = task
                        task.add_done_callback(self._forget(row.id))
            except Exception:
                log.exception("batch runner pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()

    def _forget(self, batch_id: str) -> Callable[[asyncio.Task[None]], None]:
        def forget(_task: asyncio.Task[None]) -> None:
            self._running.pop(batch_id, None)

        return forget

    async def close(self) -> None:
        self._closing = True
        self.wake()
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- one run ------------------------------------------------------------------------------
    async def _execute(self, row: BatchRow) -> None:
        progress = _Progress(skipped=row.skipped)
        error: str | None = None
        held_since: float | None = None
        replicas = gpu = 0
        try:
            if row.ephemeral:
                if self.ephemeral is None:
                    raise RuntimeError("this platform cannot make deployments for batch runs")
                spec = await self.ephemeral.create(row)
                held_since = self.now()
                replicas = int(spec.get("scale", {}).get("replicas") or 1)
                gpu = int(spec.get("resources", {}).get("gpu") or 0)
                # No wait for a first replica: inputs queue in the deployment's pool until one
                # is ready, and a model that cannot load fails them with its load error.
            await self._process(row, progress)
        except asyncio.CancelledError:
            raise  # the platform is stopping: the run resumes at the next start
        except Exception as exc:
            log.exception("batch run %s failed", row.id)
            error = f"{type(exc).__name__}: {exc}"
        finally:
            held = 0.0
            if row.ephemeral and self.ephemeral is not None:
                held = (self.now() - held_since) if held_since is not None else 0.0
                try:
                    await asyncio.shield(self.ephemeral.remove(row.deployment))
                except Exception:
                    log.exception("removing the deployment of batch run %s", row.id)
        failures, progress.failures = progress.failures, []

        def last_checkpoint_and_finish() -> None:
            # one thread hop for both: a run's end waits on each hop it makes
            try:
                self._checkpoint_now(row, progress, failures)
            except Exception:
                log.exception("last checkpoint of batch run %s failed", row.id)
            self.batches.finish(
                row.id,
                self.runner_id,
                error=error,
                replica_seconds=held * replicas,
                gpu_seconds=held * replicas * gpu,
            )

        try:
            await asyncio.to_thread(last_checkpoint_and_finish)
        finally:
            for fut in list(self._waiters.get(row.id, ())):
                if not fut.done():
                    fut.set_result(None)

    async def _process(self, row: BatchRow, p: _Progress) -> None:
        source, target = self.sides(row)
        inputs, outputs, failed_before = await asyncio.gather(
            asyncio.to_thread(source.names),
            asyncio.to_thread(target.names),
            asyncio.to_thread(self.batches.failed_names, row.id),
        )
        missing = pending(inputs, outputs)
        p.total = len(inputs)
        p.done = len(inputs) - len(missing)
        if row.total == 0 and row.done == 0:  # first start, not a resume
            p.skipped = p.done
        todo = [name for name in missing if name not in failed_before]
        concurrency = max(1, int(row.options.get("concurrency") or DEFAULT_CONCURRENCY))
        # Refilled a quarter at a time: one wake-up of this task and one write to the replicas
        # per many inputs, while the replicas still hold three quarters of the fan-out.
        low = concurrency - max(1, concurrency // 4)
        loop = asyncio.get_running_loop()
        room = asyncio.Event()
        idle = asyncio.Event()
        written = _Writer(target, p, self.group, self.linger)
        stop_checkpoints = asyncio.Event()
        checkpoints = asyncio.create_task(self._checkpoints(row, p, stop_checkpoints))

        def settle() -> None:
            if p.in_flight <= low:
                room.set()
            if p.in_flight == 0 and p.retrying == 0:
                idle.set()

        def send(name: str, data: bytes, attempt: int) -> None:
            ctype = (mimetypes.guess_type(name)[0] or "application/octet-stream").encode()

            def reply(answer: Reply) -> None:
                p.in_flight -= 1
                err = answer.error
                if err is None:
                    content_type = answer.content_type.decode("latin-1")
                    written.add(output_key(name, content_type), answer.body, content_type)
                elif (
                    (delay := retry_in(err, attempt, base=self.retry_base)) is not None
                    and attempt < self.max_attempts
                    and not p.cancelled
                ):
                    p.retrying += 1
                    loop.call_later(delay, resend, name, data, attempt + 1)
                else:
                    p.failures.append((name, failure_message(err), attempt))
                settle()

            p.in_flight += 1
            idle.clear()
            if not self.submit(row.deployment, ctype, data, reply):
                p.in_flight -= 1
                raise RuntimeError(f"deployment {row.deployment!r} is gone")

        def resend(name: str, data: bytes, attempt: int) -> None:
            p.retrying -= 1
            try:
                send(name, data, attempt)
            except RuntimeError as exc:
                p.failures.append((name, str(exc), attempt))
                settle()

        try:
            for start in range(0, len(todo), self.group):
                if p.cancelled:
                    break
                names = todo[start : start + self.group]
                datas = await asyncio.to_thread(source.read_many, names)
                for name, data in zip(names, datas, strict=True):
                    if data is None:
                        p.failures.append((name, "the input is gone", 0))
                        continue
                    if p.in_flight >= concurrency:
                        while p.in_flight > low:
                            room.clear()
                            await room.wait()
                    send(name, data, 1)
            if p.in_flight or p.retrying:
                await idle.wait()
            await written.drain()
        finally:
            stop_checkpoints.set()
            await checkpoints

    async def _checkpoints(self, row: BatchRow, p: _Progress, stop: asyncio.Event) -> None:
        """Every ``checkpoint_interval`` until ``stop``; the run's end makes the last one."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.checkpoint_interval)
            if stop.is_set():
                return
            await self._checkpoint(row, p)

    async def _checkpoint(self, row: BatchRow, p: _Progress) -> None:
        failures, p.failures = p.failures, []
        try:
            await asyncio.to_thread(self._checkpoint_now, row, p, failures)
        except Exception:
            p.failures = failures + p.failures  # try again at the next checkpoint
            log.exception("checkpoint of batch run %s failed", row.id)

    def _checkpoint_now(
        self, row: BatchRow, p: _Progress, failures: list[tuple[str, str, int]]
    ) -> None:
        """Store progress and ``failures`` (in a worker thread); learn of a cancel."""
        state = self.batches.checkpoint(
            row.id,
            self.runner_id,
            self.lease,
            total=p.total,
            done=p.done,
            skipped=p.skipped,
            failures=failures,
        )
        if state is None or state == CANCELLED:
            p.cancelled = True


class _Writer:
    """Writes results in groups from one worker thread, while the loop keeps sending.

    A result waits up to ``linger`` seconds for others, unless ``group`` are waiting: with a
    slow model, answers come one at a time, and a thread hop per result cost the platform
    more CPU than the writing. A run that stops meanwhile computes those again."""

    def __init__(self, target: Side, progress: _Progress, group: int, linger: float) -> None:
        self.target = target
        self.progress = progress
        self.group = group
        self.linger = linger
        self._pending: list[tuple[str, bytes, str]] = []
        self._task: asyncio.Task[None] | None = None
        self._full = asyncio.Event()
        self._draining = False

    def add(self, name: str, data: bytes, content_type: str) -> None:
        self._pending.append((name, data, content_type))
        if len(self._pending) >= self.group:
            self._full.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        while self._pending:
            if len(self._pending) < self.group and not self._draining:
                self._full.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.linger)
            group, self._pending = self._pending, []
            noted = False
            while True:
                try:
                    await asyncio.to_thread(self.target.write_many, group)
                    break
                except (InsufficientStorage, Unavailable, Timeout) as exc:
                    # A full disk or an unreachable S3 is not the inputs' fault: the run waits
                    # with its results in hand and writes them once there is room again.
                    if not noted:
                        noted = True
                        log.warning("batch results wait for storage: %s", exc.message)
                    await asyncio.sleep(min(exc.retry_after or 1.0, 2.0))
            self.progress.done += len(group)

    async def drain(self) -> None:
        """Write every result now (the last ones need not wait for others)."""
        self._draining = True
        self._full.set()
        while self._task is not None and not self._task.done():
            await self._task
