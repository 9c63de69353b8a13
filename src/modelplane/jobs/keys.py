"""Where a job's result goes: a pure function of the input key and the result's type.

Deriving the output key (instead of naming it after the job) makes execution idempotent: a job
that runs twice after a crash overwrites its own result rather than leaving two.
"""

from __future__ import annotations

import mimetypes

from modelplane.errors import ModelplaneError

_EXTENSIONS = {
    "application/json": ".json",
    "text/plain": ".txt",
    "text/csv": ".csv",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "application/octet-stream": ".out",
}


def output_key(input_key: str, content_type: str) -> str:
    base = content_type.split(";", 1)[0].strip().lower()
    ext = _EXTENSIONS.get(base) or mimetypes.guess_extension(base) or ".out"
    return input_key + ext


def retry_delay(attempts: int, *, base: float = 1.0, cap: float = 60.0) -> float:
    """Seconds before a failed job runs again: 1, 2, 4 ... capped. Pure."""
    return min(cap, base * 2 ** max(0, attempts - 1))


def retry_in(err: ModelplaneError, attempts: int, *, base: float = 1.0) -> float | None:
    """Seconds before an input that failed with ``err`` on its ``attempts``-th try is sent
    again, or None when it never should be. Pure.

    A 4xx is the input's own fault and will not get better; a 5xx may (a replica died, none was
    ready in time), as may anything that names a Retry-After. The wait is the doubling backoff,
    never shorter than the error's Retry-After. Whether attempts remain is the caller's count.
    """
    if not err.retryable:
        return None
    return max(retry_delay(attempts, base=base), err.retry_after or 0.0)


def failure_message(err: ModelplaneError) -> str:
    """A failed reply as one line for a job's or a batch input's error: ``"503: message"``."""
    return f"{err.status}: {err.message}"
