"""Per-user quotas against usage, and the job-queue bound. Pure.

A quota caps what a user's replicas may hold at once (CPU, memory, GPUs) and how many deployments
they may have. A dedicated deployment counts its replicas from the start; a serverless one counts
``scale.min`` replicas at creation and each further replica while it exists, so a scale-up beyond
the quota stays pending rather than starting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelplane.errors import InvalidInput, TooManyRequests
from modelplane.resources.amounts import Shortage, Usage, shortages

UNLIMITED = float("inf")


@dataclass(frozen=True)
class Quota:
    """``None`` means unlimited."""

    cpu: float | None = None
    memory: int | None = None
    gpu: int | None = None
    deployments: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Quota:
        """From the stored/REST form; refuses negative or unknown entries with the field named."""
        data = data or {}
        unknown = set(data) - {"cpu", "memory", "gpu", "deployments"}
        if unknown:
            raise InvalidInput(
                f"quotas: unknown field(s) {', '.join(sorted(unknown))}; "
                "use cpu, memory, gpu, deployments"
            )
        out: dict[str, Any] = {}
        for key in ("cpu", "memory", "gpu", "deployments"):
            value = data.get(key)
            if value is None:
                continue
            if key == "memory" and isinstance(value, str):
                from modelplane.spec import parse_memory

                try:
                    value = parse_memory(value)
                except ValueError as exc:
                    raise InvalidInput(f"quotas.memory: {exc}") from None
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidInput(f"quotas.{key}: must be a number >= 0, not {value!r}")
            out[key] = float(value) if key == "cpu" else int(value)
        return cls(**out)

    def to_dict(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in (
                ("cpu", self.cpu),
                ("memory", self.memory),
                ("gpu", self.gpu),
                ("deployments", self.deployments),
            )
            if v is not None
        }

    @property
    def limits(self) -> Usage:
        return Usage(
            UNLIMITED if self.cpu is None else self.cpu,
            UNLIMITED if self.memory is None else self.memory,  # type: ignore[arg-type]
            UNLIMITED if self.gpu is None else self.gpu,  # type: ignore[arg-type]
        )


def over_quota(
    quota: Quota, usage: Usage, extra: Usage, deployments: int = 0, new_deployments: int = 0
) -> list[Shortage]:
    """What ``extra`` on top of ``usage`` would put over ``quota`` (empty: within it)."""
    limits = quota.limits
    out = shortages(extra, (limits - usage).clamp(), limits)
    if quota.deployments is not None and new_deployments:
        left = quota.deployments - deployments
        if new_deployments > left:
            out.append(Shortage("deployments", new_deployments, max(left, 0), quota.deployments))
    return out


def check_job_queue(deployment: str, queued: int, max_queued: int | None) -> None:
    """The hook for the job queue: raise 429 when ``deployment`` already has ``max_queued`` jobs
    waiting (``None``: no bound). Call it before enqueueing one more."""
    if max_queued is not None and queued >= max_queued:
        raise TooManyRequests(
            f"deployment {deployment!r} has {queued} jobs queued, the most allowed is {max_queued}",
            hint="wait for queued jobs to finish, or raise --max-queued-jobs",
            retry_after=5.0,
            deployment=deployment,
        )
