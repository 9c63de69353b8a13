"""The one error tree of modelplane.

Every error a user can meet is a subclass of :class:`ModelplaneError`. Each class carries the HTTP
status it maps to, and a stable ``code`` string, so one handler in the control plane and one in the
gateway turn any of them into a response, and the client turns the response back into the same
class. Domain code raises these; it never raises transport (HTTP framework) exceptions.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import orjson


class ModelplaneError(Exception):
    """Base of every error modelplane reports to a user."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    retry_after: float | None = None
    """Seconds after which a retry makes sense (``Retry-After``); None: do not retry as is."""

    def __init__(self, message: str, *, hint: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.fields = fields

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        if self.fields:
            body["details"] = self.fields
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        return body

    @property
    def retry_after_header(self) -> str | None:
        """The ``Retry-After`` value (whole seconds, at least 1), or None: the one place it is
        formatted, whichever edge renders the error."""
        if self.retry_after is None:
            return None
        return str(max(1, math.ceil(self.retry_after)))

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later (the server's fault or a passing state);
        a 4xx is the request's own fault and will not get better."""
        return self.status >= 500 or self.retry_after is not None


class InvalidInput(ModelplaneError):
    """The request body or a parameter cannot be used (malformed, wrong type, schema violation)."""

    status = 400
    code = "invalid_input"


class WorkLimit(InvalidInput):
    """A request would cost more work than one request may (e.g. simulated events)."""

    status = 422
    code = "work_limit"


class InvalidSpec(ModelplaneError):
    """A deployment spec names an unknown field or an impossible value."""

    status = 422
    code = "invalid_spec"


class Unauthenticated(ModelplaneError):
    status = 401
    code = "unauthenticated"


class Forbidden(ModelplaneError):
    status = 403
    code = "forbidden"


class NotFound(ModelplaneError):
    status = 404
    code = "not_found"


class DeploymentNotFound(NotFound):
    code = "deployment_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"deployment {name!r} does not exist",
            hint="list your deployments with `modelplane ls`",
            deployment=name,
        )


class AlreadyExists(ModelplaneError):
    status = 409
    code = "already_exists"


class PayloadTooLarge(ModelplaneError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ModelplaneError):
    status = 415
    code = "unsupported_media_type"


class Conflict(ModelplaneError):
    """The request cannot be done in the current state (e.g. removing a user who owns things)."""

    status = 409
    code = "conflict"


class InsufficientResources(ModelplaneError):
    """The node has not enough free CPU, memory or GPUs now; what is short is in the message."""

    status = 409
    code = "insufficient_resources"


class QuotaExceeded(Forbidden):
    """The caller's quota does not allow it; what is over, and by how much, is in the message."""

    code = "quota_exceeded"


class TooManyRequests(ModelplaneError):
    """Over the per-token request rate; ``retry_after`` says when a request will pass."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: float = 1.0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ModelFailed(ModelplaneError):
    """The model's own code raised while predicting; the replica keeps serving."""

    status = 500
    code = "model_error"


class ReplicaFailed(ModelplaneError):
    """The replica handling a request died or broke the protocol."""

    status = 502
    code = "replica_failed"


class Unavailable(ModelplaneError):
    """No replica can take the request now; retrying later makes sense."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: float = 1.0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class StoreUnavailable(Unavailable):
    """The store (SQLite file or PostgreSQL server) cannot be reached or opened."""

    code = "store_unavailable"


class InsufficientStorage(ModelplaneError):
    """A disk is full (ENOSPC, EDQUOT): the buckets' or the store's. Nothing was half-written;
    the same request succeeds once space is freed, hence ``retry_after``."""

    status = 507
    code = "insufficient_storage"

    def __init__(self, message: str, *, retry_after: float = 5.0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


DISK_FULL_HINT = "free space on that disk (or grow it); the platform resumes by itself"


class Timeout(ModelplaneError):
    status = 504
    code = "timeout"


class EnvironmentFailed(ModelplaneError):
    """A model's own Python environment could not be built (its requirements did not install)."""

    status = 422
    code = "environment_failed"


def error_from_dict(
    status: int, body: dict[str, Any], *, retry_after: float | None = None
) -> ModelplaneError:
    """Rebuild the error class a server (or a replica) reported, from its JSON body."""
    code = body.get("error", "")
    cls: type[ModelplaneError] = _BY_CODE.get(code) or _BY_STATUS.get(status, ModelplaneError)
    message = str(body.get("message") or body.get("detail") or f"HTTP {status}")
    if cls is DeploymentNotFound:
        cls = NotFound
    err = cls.__new__(cls)
    details = body.get("details")
    ModelplaneError.__init__(
        err, message, hint=body.get("hint"), **(details if isinstance(details, dict) else {})
    )
    if cls.status != status:
        err.status = status  # type: ignore[misc]  # an unknown code: keep what was sent
    sent = body.get("retry_after")
    if retry_after is not None:
        err.retry_after = retry_after
    elif isinstance(sent, int | float):
        err.retry_after = float(sent)
    elif isinstance(err, Unavailable | TooManyRequests):
        err.retry_after = 1.0
    return err


def error_from_body(status: int, body: bytes) -> ModelplaneError:
    """The typed error of a reply that crossed a process boundary as ``(status, JSON body)``
    (a replica's answer, a server's response); a body that is not modelplane's JSON becomes the
    message. Decoded once, where the bytes arrive; nothing downstream parses them again."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        text = body[:300].decode("utf-8", "replace").strip()
        data = {"message": text or f"HTTP {status}"}
    return error_from_dict(status, data)


class SandboxUnavailable(ModelplaneError):
    """Replicas cannot be confined here (bubblewrap missing or unusable), or a spec would expose
    what a sandbox must hide."""

    status = 503
    code = "sandbox_unavailable"


def _all_subclasses(cls: type[ModelplaneError]) -> list[type[ModelplaneError]]:
    out: list[type[ModelplaneError]] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


_ALL: list[type[ModelplaneError]] = [ModelplaneError, *_all_subclasses(ModelplaneError)]
_BY_CODE: dict[str, type[ModelplaneError]] = {c.code: c for c in _ALL}
_BY_STATUS: dict[int, type[ModelplaneError]] = {
    400: InvalidInput,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: InvalidSpec,
    429: TooManyRequests,
    502: ReplicaFailed,
    503: Unavailable,
    504: Timeout,
}
