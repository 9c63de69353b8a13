"""How long to wait before replacing a replica that keeps dying. Pure."""

from __future__ import annotations

from modelplane.jobs.keys import retry_delay


def restart_delay(failures: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """0 s for the first failure, then 0.5 s, 1 s, 2 s ... up to ``cap``.

    The first replacement is immediate: one crash is usually a bad request or a bad moment, and
    a dedicated deployment should be back at full strength at once. Repeated crashes are a crash
    loop, which must not burn the machine.
    """
    if failures <= 1:
        return 0.0
    return retry_delay(failures - 1, base=base, cap=cap)  # the one doubling backoff


def failures_after_exit(
    failures: int, *, ran: float, was_ready: bool, during_request: bool, stable_after: float
) -> int:
    """The crash-loop count after a replica died unasked (the input of :func:`restart_delay`).

    A replica that served for ``stable_after`` seconds was not in a loop: the count restarts at
    one. A replica that died while it was answering a request was killed by that request (a model
    that calls ``os._exit`` on some input, a native crash on a malformed file): other users must
    not wait out a backoff for it, so the count does not grow. Anything else is a crash loop.
    """
    if was_ready and during_request:
        return min(failures, 1)
    if was_ready and ran >= stable_after:
        return 1
    return failures + 1
