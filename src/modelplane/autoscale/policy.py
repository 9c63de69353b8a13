"""The serverless scaling policy: how many replicas a deployment should have, now.

In the spirit of Knative's concurrency autoscaler (KPA), but written for one machine:

- **Stable mode.** Desired replicas = ceil(average concurrency over the stable window / target
  concurrency per replica). A long window keeps steady traffic from flapping.
- **Panic mode.** When the average over the short panic window reaches ``panic_threshold`` times
  the capacity of the current replicas, a burst is under way and the stable average is too slow
  to react. The policy then sizes for the panic average and never scales down, until a whole
  stable window has passed without the burst condition.
- **Scale from zero** as soon as anything waits (an in-flight or queued request, a queued job):
  the gateway holds those requests until a replica is ready, so every tick of delay is latency.
- **Scale to zero** only after ``idle_timeout`` seconds without requests and with nothing in flight
  or queued; before that, a deployment that has a replica keeps one, so trickle traffic does not
  pay a cold start per request.
- **Rate limits** bound a step relative to the current count (up: ``x max_scale_up_rate``, down:
  ``/ max_scale_down_rate``), and min/max bounds always win.

:func:`decide` is pure: it takes the numbers, the previous :class:`PolicyState` and ``now``, and
returns a :class:`Decision` and the next state. The caller (the autoscale loop) collects the
metrics, stores the state between ticks and asks the backend to act.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from modelplane.errors import InvalidSpec

if TYPE_CHECKING:
    from modelplane.autoscale.window import ConcurrencyWindow
    from modelplane.spec.deployment import Scale

__all__ = ["Decision", "PolicyState", "ScaleConfig", "ScaleContext", "decide"]

# Averages are sums of floats; 3.0000000001 concurrent requests must not ask for a fourth replica.
_EPSILON = 1e-9


def _ceil(value: float) -> int:
    return max(math.ceil(value - _EPSILON), 0)


@dataclass(frozen=True, slots=True)
class ScaleConfig:
    """How a serverless deployment scales. Times are in seconds.

    The defaults for the windows, threshold and rates follow Knative's, with a shorter stable
    window (30 s, panic window 3 s) because a replica here starts in milliseconds to seconds,
    not the tens of seconds of a pod.
    """

    min_replicas: int = 0
    max_replicas: int = 4
    target_concurrency: float = 4.0
    idle_timeout: float = 300.0
    stable_window: float = 30.0
    panic_window_fraction: float = 0.1
    panic_threshold: float = 2.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    # Hold a scale-down until the lower count has been wanted this long (0: no hold).
    scale_down_delay: float = 0.0

    def __post_init__(self) -> None:
        # `not x > 0` rather than `x <= 0` so that NaN is rejected too.
        checks: list[tuple[bool, str, object, str]] = [
            (self.min_replicas >= 0, "min_replicas", self.min_replicas, ">= 0"),
            (self.max_replicas >= 1, "max_replicas", self.max_replicas, ">= 1"),
            (
                self.min_replicas <= self.max_replicas,
                "min_replicas",
                self.min_replicas,
                f"<= max_replicas ({self.max_replicas})",
            ),
            (self.target_concurrency > 0, "target_concurrency", self.target_concurrency, "> 0"),
            (self.idle_timeout > 0, "idle_timeout", self.idle_timeout, "> 0 seconds"),
            (self.stable_window > 0, "stable_window", self.stable_window, "> 0 seconds"),
            (
                0 < self.panic_window_fraction <= 1,
                "panic_window_fraction",
                self.panic_window_fraction,
                "in (0, 1]",
            ),
            (self.panic_threshold >= 1, "panic_threshold", self.panic_threshold, ">= 1"),
            (self.max_scale_up_rate > 1, "max_scale_up_rate", self.max_scale_up_rate, "> 1"),
            (self.max_scale_down_rate > 1, "max_scale_down_rate", self.max_scale_down_rate, "> 1"),
            (self.scale_down_delay >= 0, "scale_down_delay", self.scale_down_delay, ">= 0"),
        ]
        for ok, field, value, allowed in checks:
            if not ok:
                raise InvalidSpec(
                    f"scale config: {field} must be {allowed}, got {value!r}",
                    field=field,
                    value=value,
                    allowed=allowed,
                )

    @property
    def panic_window(self) -> float:
        """The short window, in seconds, whose average detects a burst."""
        return self.stable_window * self.panic_window_fraction

    @classmethod
    def from_spec(cls, scale: Scale, **tuning: float) -> ScaleConfig:
        """Build from a deployment spec's ``scale`` section; ``tuning`` overrides the rest."""
        return cls(
            min_replicas=scale.min,
            max_replicas=scale.max,
            target_concurrency=scale.target_concurrency,
            idle_timeout=scale.idle_timeout,
            **tuning,
        )


@dataclass(frozen=True, slots=True)
class ScaleContext:
    """What the autoscale loop observed for one deployment at one tick.

    ``stable_concurrency`` and ``panic_concurrency`` are averages of the concurrency the gateway
    sees — requests served by replicas plus requests queued for one — over the stable and panic
    windows. ``in_flight`` and ``queued_requests`` are the instantaneous counts (served, and
    waiting for a replica); ``queued_jobs`` is the async job backlog not yet handed to a replica,
    counted as extra demand. ``last_request_at`` is when the gateway last saw a request arrive or
    finish (``None``: never; pass the deployment's creation time to give a new deployment a
    grace period before scale-to-zero).
    """

    replicas: int
    stable_concurrency: float = 0.0
    panic_concurrency: float = 0.0
    in_flight: int = 0
    queued_requests: int = 0
    queued_jobs: int = 0
    last_request_at: float | None = None

    def __post_init__(self) -> None:
        for field in ("replicas", "in_flight", "queued_requests", "queued_jobs"):
            if getattr(self, field) < 0:
                raise ValueError(f"{field} must be >= 0, got {getattr(self, field)!r}")
        for field in ("stable_concurrency", "panic_concurrency"):
            if not getattr(self, field) >= 0:
                raise ValueError(f"{field} must be >= 0, got {getattr(self, field)!r}")

    @property
    def waiting(self) -> int:
        """Work that needs a replica right now: in flight, queued requests and queued jobs."""
        return self.in_flight + self.queued_requests + self.queued_jobs

    @classmethod
    def from_window(
        cls,
        window: ConcurrencyWindow,
        config: ScaleConfig,
        now: float,
        *,
        replicas: int,
        in_flight: int = 0,
        queued_requests: int = 0,
        queued_jobs: int = 0,
        last_request_at: float | None = None,
    ) -> ScaleContext:
        """Read both averages off a window (its horizon must cover ``config.stable_window``).

        Without an explicit ``last_request_at``, the window's last non-zero sample stands in.
        """
        return cls(
            replicas=replicas,
            stable_concurrency=window.average(now, config.stable_window),
            panic_concurrency=window.average(now, config.panic_window),
            in_flight=in_flight,
            queued_requests=queued_requests,
            queued_jobs=queued_jobs,
            last_request_at=(
                last_request_at if last_request_at is not None else window.last_active_at
            ),
        )


@dataclass(frozen=True, slots=True)
class PolicyState:
    """What the policy remembers between ticks; the caller stores it and passes it back.

    ``panic_since``: when the current panic began (``None``: not panicking).
    ``burst_seen_at``: the last tick the burst condition held; panic ends a stable window later.
    ``max_panic_replicas``: the highest count asked for during this panic (never lowered in it).
    ``scale_down_wanted_since``: since when a lower count has been wanted (for the delay).
    ``last_scale_down_at``: when the policy last asked for fewer replicas than were running.
    """

    panic_since: float | None = None
    burst_seen_at: float | None = None
    max_panic_replicas: int = 0
    scale_down_wanted_since: float | None = None
    last_scale_down_at: float | None = None

    @property
    def panicking(self) -> bool:
        return self.panic_since is not None


@dataclass(frozen=True, slots=True)
class Decision:
    """How many replicas to have, and why, in words an operator reads in the dashboard."""

    desired_replicas: int
    reason: str
    panicking: bool = False


def decide(
    config: ScaleConfig, ctx: ScaleContext, state: PolicyState, now: float
) -> tuple[Decision, PolicyState]:
    """Decide the replica count for one tick. Pure: no I/O, no clock; ``now`` is in seconds.

    The result is always within ``[min_replicas, max_replicas]``.
    """
    target = config.target_concurrency
    current = ctx.replicas
    stable_demand = ctx.stable_concurrency + ctx.queued_jobs
    panic_demand = ctx.panic_concurrency + ctx.queued_jobs
    # At zero replicas, measure the burst against one replica's capacity (as Knative does),
    # which also avoids dividing by zero.
    burst = panic_demand / (max(current, 1) * target)

    state = _track_panic(config, state, burst >= config.panic_threshold, now)

    if state.panicking:
        panic_desired = min(_ceil(panic_demand / target), config.max_replicas)
        # Never scale down while panicking: hold the highest count of this panic.
        held = max(panic_desired, state.max_panic_replicas, current)
        state = replace(state, max_panic_replicas=held, scale_down_wanted_since=None)
        desired, note = _rate_limit(config, current, held)
        reason = (
            f"panic: burst {burst:.1f}x target ({panic_demand:.1f} concurrent, "
            f"{current} replica(s)) -> {held}"
        )
        return _finish(config, current, desired, _join(reason, note), state, now, panicking=True)

    idle_for = None if ctx.last_request_at is None else now - ctx.last_request_at
    idle = ctx.waiting == 0 and (idle_for is None or idle_for >= config.idle_timeout)

    if idle and config.min_replicas == 0:
        # Scale-to-zero skips the down rate limit: after a full idle timeout with nothing in
        # flight there is no load to protect, and stepping down by halves would only waste.
        state = replace(state, scale_down_wanted_since=None)
        if current == 0:
            return _finish(config, current, 0, "idle: stay at zero", state, now)
        if idle_for is None:
            reason = "no request seen: scale to zero"
        else:
            reason = f"idle for {idle_for:.0f} s: scale to zero"
        return _finish(config, current, 0, reason, state, now)

    desired = _ceil(stable_demand / target)
    reason = f"stable: {stable_demand:.2f} concurrent / target {target:g} -> {desired}"
    if desired < 1 and ctx.waiting > 0:
        desired = 1
        reason = f"{ctx.waiting} waiting -> 1"
    elif desired < 1 and current > 0 and not idle:
        desired = 1
        reason = f"quiet for {idle_for:.0f} s < idle timeout {config.idle_timeout:g} s: keep 1"
    if current == 0 and desired > 0:
        reason = f"scale from zero: {reason}"

    desired, note = _rate_limit(config, current, desired)
    reason = _join(reason, note)

    if desired < current and config.scale_down_delay > 0:
        since = state.scale_down_wanted_since
        if since is None:
            since = now
            state = replace(state, scale_down_wanted_since=now)
        if now - since < config.scale_down_delay:
            return _finish(
                config,
                current,
                current,
                _join(reason, f"scale-down held {now - since:.0f}/{config.scale_down_delay:g} s"),
                state,
                now,
            )
    elif desired >= current:
        state = replace(state, scale_down_wanted_since=None)
    return _finish(config, current, desired, reason, state, now)


def _track_panic(
    config: ScaleConfig, state: PolicyState, bursting: bool, now: float
) -> PolicyState:
    """Enter panic on a burst; leave it once a stable window has passed without one."""
    if bursting:
        return replace(
            state,
            panic_since=state.panic_since if state.panic_since is not None else now,
            burst_seen_at=now,
        )
    if state.panic_since is not None and (
        state.burst_seen_at is None or now - state.burst_seen_at >= config.stable_window
    ):
        return replace(state, panic_since=None, burst_seen_at=None, max_panic_replicas=0)
    return state


def _rate_limit(config: ScaleConfig, current: int, desired: int) -> tuple[int, str]:
    """Bound one step relative to the current count; from zero, count as one replica."""
    up_limit = math.ceil(config.max_scale_up_rate * max(current, 1))
    down_limit = math.floor(current / config.max_scale_down_rate)
    if desired > up_limit:
        return up_limit, f"scale-up rate limited to {up_limit}"
    if desired < down_limit:
        return down_limit, f"scale-down rate limited to {down_limit}"
    return desired, ""


def _finish(
    config: ScaleConfig,
    current: int,
    desired: int,
    reason: str,
    state: PolicyState,
    now: float,
    *,
    panicking: bool = False,
) -> tuple[Decision, PolicyState]:
    """Apply the min/max bounds (they always win) and note a scale-down in the state."""
    if desired > config.max_replicas:
        desired = config.max_replicas
        reason = _join(reason, f"capped at max {config.max_replicas}")
    elif desired < config.min_replicas:
        desired = config.min_replicas
        reason = _join(reason, f"raised to min {config.min_replicas}")
    if desired < current:
        state = replace(state, last_scale_down_at=now)
    return Decision(desired_replicas=desired, reason=reason, panicking=panicking), state


def _join(reason: str, note: str) -> str:
    return f"{reason}; {note}" if note else reason
