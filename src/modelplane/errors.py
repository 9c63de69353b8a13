"""The one error tree of modelplane.

Every error a user can meet is a subclass of :class:`ModelplaneError`. Each class carries the HTTP
status it maps to, and a stable ``code`` string, so one handler in the control plane and one in the
gateway turn any of them into a response, and the client turns the response back into the same
class. Domain code raises these; it never raises transport (HTTP framework) exceptions.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ModelplaneError(Exception):
    """Base of every error modelplane reports to a user."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

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
        return body


class InvalidInput(ModelplaneError):
    """The request body or a parameter cannot be used (malformed, wrong type, schema violation)."""

    status = 400
    code = "invalid_input"


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


class Timeout(ModelplaneError):
    status = 504
    code = "timeout"


class EnvironmentFailed(ModelplaneError):
    """A model's own Python environment could not be built (its requirements did not install)."""

    status = 422
    code = "environment_failed"


def error_from_dict(status: int, body: dict[str, Any]) -> ModelplaneError:
    """Rebuild the error class a server reported, for the client side."""
    code = body.get("error", "")
    cls: type[ModelplaneError] = _BY_CODE.get(code, ModelplaneError)
    message = str(body.get("message") or body.get("detail") or f"HTTP {status}")
    if cls is DeploymentNotFound:
        cls = NotFound
    err = cls.__new__(cls)
    ModelplaneError.__init__(err, message, hint=body.get("hint"), **(body.get("details") or {}))
    if isinstance(err, Unavailable | TooManyRequests):
        err.retry_after = 1.0
    return err


def _all_subclasses(cls: type[ModelplaneError]) -> list[type[ModelplaneError]]:
    out: list[type[ModelplaneError]] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


_ALL: list[type[ModelplaneError]] = [ModelplaneError, *_all_subclasses(ModelplaneError)]
_BY_CODE: dict[str, type[ModelplaneError]] = {c.code: c for c in _ALL}


class SandboxUnavailable(ModelplaneError):
    """Replicas cannot be confined here (bubblewrap missing or unusable), or a spec would expose
    what a sandbox must hide."""

    status = 503
    code = "sandbox_unavailable"
