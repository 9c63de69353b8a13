"""What the data plane takes (:class:`PredictRequest`) and answers (:class:`Reply`): a replica's
bytes, or a typed error, never JSON to parse back. No dependency beyond the error tree, so the
fronts' halves that also run inside a model's own environment (``modelplane run``) can use it.

A :class:`Reply` is either what a replica sent (status, content type, body: passed through as it
came, the fronts' own error shapes included) or an error the data plane itself decided (no ready
replica in time, a full queue, a replica that died, 401/404/429): then ``body`` is empty and
``error`` holds the :class:`~modelplane.errors.ModelplaneError`, with its ``retry_after``, for the
edge to render in its protocol's shape. A replica's own error answer is turned into the typed
error once, lazily, only when someone asks for ``error``.
"""

from __future__ import annotations

from collections.abc import Callable

from modelplane.errors import ModelplaneError, error_from_body
from modelplane.security import Principal


class PredictRequest:
    """One prediction as the data plane takes it: the raw body, and who asks.

    ``principal`` set: the caller is known and was allowed by its front's own rules (the job
    runner and batch runs, as the platform; OSCAR's ``/run``, by the service's visibility; a
    relay from another platform process); the rate limit still applies. Otherwise
    ``authorization`` (the raw header) is checked by the data plane, and the caller must own the
    deployment (or hold its inference token). ``meta`` names a protocol front and its parameters
    for the replica's codec (empty: the native contract)."""

    __slots__ = ("authorization", "body", "content_type", "meta", "principal")

    def __init__(
        self,
        content_type: bytes,
        body: bytes | bytearray,
        *,
        authorization: bytes = b"",
        principal: Principal | None = None,
        meta: bytes = b"",
    ) -> None:
        self.content_type = content_type
        self.body = body
        self.authorization = authorization
        self.principal = principal
        self.meta = meta


class Reply:
    """One answer to one prediction. ``ok``: a 2xx/3xx from the model."""

    __slots__ = ("_error", "body", "content_type", "status")

    def __init__(
        self,
        status: int,
        content_type: bytes,
        body: bytes,
        error: ModelplaneError | None = None,
    ) -> None:
        self.status = status
        self.content_type = content_type
        self.body = body
        self._error = error

    @classmethod
    def failed(cls, error: ModelplaneError) -> Reply:
        """An answer the data plane decided: nothing was rendered yet; the edge renders it."""
        return cls(error.status, b"", b"", error)

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def from_replica(self) -> bool:
        """True when ``body`` holds what the replica sent (also for its error answers)."""
        return bool(self.content_type)

    @property
    def error(self) -> ModelplaneError | None:
        """The typed error of a failed reply (None when ``ok``)."""
        if self._error is None and self.status >= 400:
            self._error = error_from_body(self.status, self.body)
        return self._error

    def __repr__(self) -> str:
        what = self.content_type.decode("latin-1") or type(self._error).__name__
        return f"Reply({self.status}, {what}, {len(self.body)} bytes)"


OnReply = Callable[[Reply], None]
"""Called exactly once with the answer to a prediction."""
