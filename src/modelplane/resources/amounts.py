"""Amounts of CPU, memory and GPUs, and what is short when a request does not fit. Pure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    """CPU cores, memory bytes and GPUs: held, committed, asked for or allowed."""

    cpu: float = 0.0
    memory: int = 0
    gpu: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.cpu + other.cpu, self.memory + other.memory, self.gpu + other.gpu)

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.cpu - other.cpu, self.memory - other.memory, self.gpu - other.gpu)

    def times(self, n: int) -> Usage:
        return Usage(self.cpu * n, self.memory * n, self.gpu * n)

    def at_least(self, other: Usage) -> Usage:
        """Component-wise maximum."""
        return Usage(
            max(self.cpu, other.cpu), max(self.memory, other.memory), max(self.gpu, other.gpu)
        )

    def clamp(self) -> Usage:
        """No negative amounts."""
        return self.at_least(Usage())

    def to_dict(self) -> dict[str, float | int]:
        return {"cpu": round(self.cpu, 3), "memory": self.memory, "gpu": self.gpu}


EPSILON = 1e-9
"""CPU is fractional: 0.1 + 0.2 must fit in 0.3."""


def fmt_amount(resource: str, value: float) -> str:
    if resource == "memory":
        return fmt_bytes(value)
    if resource == "cpu":
        return f"{value:g} cores" if value != 1 else "1 core"
    if resource == "gpu":
        return f"{value:g} GPUs" if value != 1 else "1 GPU"
    return f"{value:g} {resource}"


def fmt_bytes(value: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= size:
            return f"{value / size:.4g} {unit}"
    return f"{value:.0f} B"


@dataclass(frozen=True)
class Shortage:
    """One resource that does not suffice: ``need`` asked, ``available`` left of ``limit``."""

    resource: str  # cpu | memory | gpu | deployments
    need: float
    available: float
    limit: float

    @property
    def short_by(self) -> float:
        return self.need - self.available

    def describe(self, of: str = "free") -> str:
        f = fmt_amount
        r = self.resource
        return (
            f"{r}: needs {f(r, self.need)}, {f(r, max(self.available, 0))} {of} of "
            f"{f(r, self.limit)} (short by {f(r, self.short_by)})"
        )

    def to_dict(self) -> dict[str, float | str]:
        return {
            "resource": self.resource,
            "need": self.need,
            "available": self.available,
            "limit": self.limit,
            "short_by": self.short_by,
        }


def shortages(need: Usage, available: Usage, limit: Usage) -> list[Shortage]:
    """The resources of ``need`` that exceed ``available``."""
    out = []
    for r in ("cpu", "memory", "gpu"):
        n, a = getattr(need, r), getattr(available, r)
        if n > a + EPSILON:
            out.append(Shortage(r, n, a, getattr(limit, r)))
    return out
