"""One deployment's autoscaling memory, and the step that turns an observation into a decision.

The autoscale loop keeps one :class:`Tracker` per serverless deployment and feeds it what the
gateway reports at each tick; the advisor's simulator keeps one per simulated deployment and
feeds it what its simulated gateway reports. Both therefore run the same glue between the
gateway's counts and :func:`~modelplane.autoscale.policy.decide` — when a request counts as
"seen", what the window records, which averages the policy gets — and neither copies it.

No clock, no I/O: ``now`` is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelplane.autoscale.policy import Decision, PolicyState, ScaleConfig, ScaleContext, decide
from modelplane.autoscale.window import ConcurrencyWindow

__all__ = ["Tracker"]


@dataclass
class Tracker:
    """What the autoscaler remembers about one deployment between ticks."""

    config: ScaleConfig
    created_at: float
    window: ConcurrencyWindow = field(init=False)
    state: PolicyState = field(default_factory=PolicyState)
    desired: int = field(init=False)
    reason: str = "no traffic yet"
    last_request_at: float | None = None
    last_count: int = 0

    def __post_init__(self) -> None:
        self.window = ConcurrencyWindow(horizon=self.config.stable_window)
        self.desired = self.config.min_replicas

    def observe(
        self,
        now: float,
        *,
        replicas: int,
        in_flight: int,
        queued: int,
        requests_so_far: int,
        queued_jobs: int = 0,
    ) -> Decision:
        """Record one tick's counts and decide. ``requests_so_far`` is the gateway's running
        count of requests: a change means traffic since the last tick, even if it was answered
        between two ticks."""
        if in_flight or queued or queued_jobs or requests_so_far != self.last_count:
            self.last_request_at = now
        self.last_count = requests_so_far
        self.window.record(now, in_flight + queued)
        decision, self.state = decide(
            self.config,
            self._context(now, replicas, in_flight, queued, queued_jobs),
            self.state,
            now,
        )
        self.reason = decision.reason
        self.desired = decision.desired_replicas
        return decision

    def peek(self, now: float, *, replicas: int) -> tuple[Decision, PolicyState]:
        """What :meth:`observe` would decide at ``now`` if nothing were in flight, queued or
        newly arrived since the last tick — without changing anything.

        A simulator uses it to skip idle stretches: while a deployment is quiet the inputs of
        every tick are the same but for ``now``, so only the instants where this answer changes
        need a real tick.
        """
        ctx = self._context(now, replicas, 0, 0, 0)
        return decide(self.config, ctx, self.state, now)

    def context(
        self,
        now: float,
        *,
        replicas: int,
        in_flight: int,
        queued: int,
        requests_so_far: int,
        queued_jobs: int = 0,
    ) -> ScaleContext:
        """The context :meth:`observe` would pass the policy at ``now`` with these counts, if
        the window held no new sample — without changing anything (a simulator checks with it
        that a busy, unchanging stretch cannot decide anything else)."""
        last = self.last_request_at
        if in_flight or queued or queued_jobs or requests_so_far != self.last_count:
            last = now
        ctx = ScaleContext.from_window(
            self.window,
            self.config,
            now,
            replicas=replicas,
            in_flight=in_flight,
            queued_requests=queued,
            queued_jobs=queued_jobs,
            last_request_at=last if last is not None else self.created_at,
        )
        return ctx

    def _context(
        self, now: float, replicas: int, in_flight: int, queued: int, queued_jobs: int
    ) -> ScaleContext:
        return ScaleContext.from_window(
            self.window,
            self.config,
            now,
            replicas=replicas,
            in_flight=in_flight,
            queued_requests=queued,
            queued_jobs=queued_jobs,
            last_request_at=self.last_request_at
            if self.last_request_at is not None
            else self.created_at,
        )
