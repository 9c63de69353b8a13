"""Replica lifecycle, decided purely: what to start, what to stop, and until when to wait.

The reconciler observes (the replicas it started, what the data plane and the backend say of
them, the deployment's crash history), asks here, and acts on the answer through the runtime
backend. Nothing here awaits, reads a clock or touches a process: ``now`` comes in, actions come
out, so a ten-minute backoff or a crash loop is tested in microseconds.

- :func:`decide`: one deployment's replicas toward the wanted count — start, scale down, or wait
  for the crash backoff or the model's environment;
- :func:`memory_stops`: replicas over the deployment's memory limit, to stop at once;
- :func:`after_exit`: a replica is gone; was it a crash, of which kind, and how long until the
  next one starts (the backoff grows in a crash loop and restarts once a replica ran long);
- :func:`not_placed`: a replica could not be reserved room (node full, over quota).
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from modelplane.controlplane.backoff import failures_after_exit, restart_delay
from modelplane.gateway.balance import scale_down_order

STABLE_AFTER = 10.0
"""A replica that ran this long before dying resets the backoff: it was not a crash loop."""


@dataclass(frozen=True)
class ReplicaView:
    """One replica as the decider sees it."""

    id: str
    state: str
    """starting | ready | exiting (its connection dropped) | stopping (asked to)."""
    load: int = 0
    """Requests in flight on it."""
    memory: int | None = None
    """Resident bytes, None if unknown."""

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def live(self) -> bool:
        return self.state != "stopping"


@dataclass(frozen=True)
class CrashHistory:
    """A deployment's crash loop so far: what the backoff is computed from."""

    failures: int = 0
    """Crashes in the current loop (see :func:`.backoff.failures_after_exit`)."""
    restarts: int = 0
    """Replicas replaced since the deployment started, shown by ``status``."""
    next_start_at: float = 0.0
    """No replica starts before this instant (the crash backoff)."""

    def reset(self) -> CrashHistory:
        """A new spec is a new start: no loop, no wait; the restart count stays."""
        return CrashHistory(restarts=self.restarts)


# -- actions ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Start:
    """Start one replica; ``cold``: the deployment has none ready, so this is a cold start."""

    cold: bool


@dataclass(frozen=True)
class Stop:
    replica: str
    reason: str
    grace: float | None = None
    """Seconds to finish in-flight requests; None: the platform's stop grace."""
    oom: str | None = None
    """Set when stopped for its memory: the message kept as the deployment's last error."""


@dataclass(frozen=True)
class WaitUntil:
    """Replicas are wanted but the crash backoff holds them until ``at``."""

    at: float


@dataclass(frozen=True)
class EnvironmentFailed:
    """The model's environment could not be built: nothing can start."""

    reason: str


Action = Start | Stop | WaitUntil | EnvironmentFailed


def decide(
    want: int,
    replicas: Sequence[ReplicaView],
    history: CrashHistory,
    now: float,
    *,
    environment: dict[str, Any] | None = None,
) -> list[Action]:
    """The actions that bring ``replicas`` toward ``want`` at ``now``.

    Starts come in one batch (the reconciler stops at the first that finds no room); while the
    environment builds nothing starts; scaling down stops replicas still starting first, then
    the ready ones with the fewest requests in flight.
    """
    live = [r for r in replicas if r.live]
    if len(live) < want:
        if environment is not None and environment["state"] != "ready":
            if environment["state"] == "failed":
                reason = f"the model's environment could not be built: {environment.get('error')}"
                return [EnvironmentFailed(reason)]
            return []  # building: wait for the backend's prepare to wake us
        if now < history.next_start_at:
            return [WaitUntil(history.next_start_at)]
        cold = not any(r.ready for r in live)
        return [Start(cold) for _ in range(want - len(live))]
    if len(live) > want:
        victims = scale_down_order(live, lambda r: r.load)
        return [Stop(r.id, "scaled down") for r in victims[: len(live) - want]]
    return []


def memory_stops(limit: int, replicas: Sequence[ReplicaView]) -> list[Stop]:
    """Live replicas whose resident memory is over ``limit``: stopped at once (no grace)."""
    stops = []
    for r in replicas:
        if r.live and r.memory is not None and r.memory > limit:
            message = (
                f"replica {r.id} used {r.memory / 2**20:.0f} MiB, over its memory limit of "
                f"{limit / 2**20:.0f} MiB, and was stopped"
            )
            stops.append(Stop(r.id, "over its memory limit", grace=0, oom=message))
    return stops


# -- a replica is gone --------------------------------------------------------------------------
@dataclass(frozen=True)
class Exit:
    """How a replica ended, as far as the reconciler saw it."""

    replica: str
    code: int | None
    """Exit code (negative: killed by that signal); None: it could not be started."""
    started_at: float
    ready_at: float | None = None
    stop_requested: bool = False
    oom: bool = False
    error: str | None = None
    """Its load error, its start error, or the over-memory message."""
    during_request: bool = False


@dataclass(frozen=True)
class Crash:
    kind: str
    """oom_killed | load_failed | request_crash | crashed: the restart metric's label."""
    reason: str
    delay: float
    """Seconds until its replacement may start."""
    history: CrashHistory

    @property
    def fails_waiting(self) -> bool:
        """Requests waiting for a replica should be answered now: the model cannot load."""
        return self.kind == "load_failed"


def after_exit(
    gone: Exit, history: CrashHistory, now: float, *, stable_after: float = STABLE_AFTER
) -> Crash | None:
    """What a replica's end means: None if it was asked to stop, else the crash and the
    deployment's history after it (one more restart, the backoff before the next start)."""
    if gone.stop_requested and not gone.oom:
        return None
    if gone.oom:
        reason, kind = gone.error or "over its memory limit", "oom_killed"
    elif gone.error:
        reason, kind = gone.error, "load_failed"
    elif gone.during_request and gone.ready_at is not None:
        reason = f"replica {gone.replica} {describe_exit(gone.code)} while handling a request"
        kind = "request_crash"
    else:
        reason, kind = f"replica {gone.replica} {describe_exit(gone.code)}", "crashed"
    failures = failures_after_exit(
        history.failures,
        ran=now - (gone.ready_at or gone.started_at),
        was_ready=gone.ready_at is not None,
        during_request=kind == "request_crash",
        stable_after=stable_after,
    )
    delay = restart_delay(failures)
    after = replace(
        history, failures=failures, restarts=history.restarts + 1, next_start_at=now + delay
    )
    return Crash(kind, reason, delay, after)


def describe_exit(code: int | None) -> str:
    if code is None:
        return "could not be started"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


# -- no room for a replica ----------------------------------------------------------------------
@dataclass(frozen=True)
class NotPlaced:
    message: str
    """The deployment's ``pending`` reason from now on."""
    announce: bool
    """A new reason: log it and write an event (a repeated one is not written again)."""
    fails_waiting: bool
    """No replica is left to serve: answer the requests waiting for one."""


def not_placed(pending: str | None, refusal: str, live: int) -> NotPlaced:
    """A replica could not reserve its CPU, memory or GPUs (``refusal`` says why)."""
    message = f"replica not started: {refusal}"
    return NotPlaced(message, announce=pending != message, fails_waiting=live == 0)
