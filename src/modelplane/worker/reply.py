"""Replies that cannot break a replica: whatever a model returns or raises becomes bytes.

A replica serves many requests over one socket; an exception that escapes while one reply is
being encoded would tear the socket down and fail every request in flight. So every path from a
model's result (or exception) to a reply frame goes through here, and each failure becomes a
precise error body naming what went wrong. Nothing here raises.
"""

from __future__ import annotations

import sys
import traceback

import orjson

from modelplane.errors import ModelFailed, ModelplaneError
from modelplane.model.contract import json_bytes, safe_str

MAX_REPLY = 256 * 2**20
"""Largest reply body a replica sends (bytes); a frame's length is a u32, so never above 4 GiB."""


def error_body(err: ModelplaneError) -> bytes:
    """The JSON body of an error; a body that cannot be encoded degrades, never raises."""
    try:
        return json_bytes(err.to_dict())
    except Exception:
        pass
    try:
        return orjson.dumps(
            {"error": err.code, "message": safe_str(err.message, 2000)},
            default=safe_str,
            option=orjson.OPT_NON_STR_KEYS,
        )
    except Exception:
        return b'{"error":"internal_error","message":"the error could not be encoded"}'


def log_failure(exc: BaseException, context: str) -> None:
    """The traceback on stderr: the replica's log on the platform, the terminal on ``run``."""
    try:
        print(f"modelplane: {context}", file=sys.stderr)
        traceback.print_exception(exc, file=sys.stderr)
        sys.stderr.flush()
    except Exception:  # a closed or broken stderr must not turn into a failed request
        pass


def not_encodable(model: str, exc: BaseException, hint: str | None = None) -> ModelFailed:
    why = safe_str(exc)
    cause = exc.__cause__ or exc.__context__
    if cause is not None:  # orjson chains what a value's own conversion raised
        why += f" ({type(cause).__name__}: {safe_str(cause)})"
    return ModelFailed(
        f"model {model!r} returned a value that cannot be sent as JSON: {why}",
        hint=hint or "return JSON-able values, bytes, or a modelplane.model.FileOutput",
        model=model,
    )


def too_large(model: str, size: int, limit: int = MAX_REPLY) -> ModelFailed:
    return ModelFailed(
        f"model {model!r} returned {size / 2**20:.1f} MiB, over the replica's reply limit of "
        f"{limit / 2**20:.0f} MiB",
        hint="return a smaller result, or write large results to a bucket with an async job",
        model=model,
        size=size,
        limit=limit,
    )
