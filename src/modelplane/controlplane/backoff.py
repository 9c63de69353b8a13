"""How long to wait before replacing a replica that keeps dying. Pure."""

from __future__ import annotations


def restart_delay(failures: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """0 s for the first failure, then 0.5 s, 1 s, 2 s ... up to ``cap``.

    The first replacement is immediate: one crash is usually a bad request or a bad moment, and
    a dedicated deployment should be back at full strength at once. Repeated crashes are a crash
    loop, which must not burn the machine.
    """
    if failures <= 1:
        return 0.0
    return min(cap, base * 2 ** (failures - 2))
