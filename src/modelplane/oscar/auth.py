"""Who calls the OSCAR API: HTTP Basic or a bearer token for ``/system``, the service's token or a
user's token for ``/run`` and ``/job``.

modelplane has no passwords: a Basic ``user:password`` is accepted when ``password`` is a live API
token of ``user`` (``modelplane tokens create``; the admin's is printed by ``modelplane up``).
In single-user local mode every caller is the local user, as on the native API.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import Request

from modelplane.core.auth import account_principal
from modelplane.errors import Forbidden, Unauthenticated
from modelplane.gateway.dataplane import DataPlane
from modelplane.oscar.services import ServiceNotFound, may_use
from modelplane.security import Authenticate, Principal

_HINT = (
    "use HTTP Basic with your user name and an API token as the password, or "
    "`Authorization: Bearer <token>`"
)


def basic_credentials(header: str) -> tuple[str, str] | None:
    """``(user, password)`` of an ``Authorization: Basic …`` header, or None."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        text = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = text.partition(":")
    return (user, password) if sep else None


def basic_principal(
    header: str, authenticate: Authenticate, *, check_user: bool
) -> Principal | None:
    """The account behind ``Authorization: Basic user:token``; None for any other scheme.
    ``check_user``: the token must be ``user``'s (off in single-user local mode)."""
    creds = basic_credentials(header)
    if creds is None:
        if header[:6].lower() == "basic ":
            raise Unauthenticated("malformed Basic credentials", hint=_HINT)
        return None
    user, password = creds
    principal = authenticate(f"Bearer {password}".encode("latin-1"))
    if principal is None or (check_user and principal.user != user):
        raise Unauthenticated(f"wrong user name or token for {user!r}", hint=_HINT)
    if principal.deployment is not None:
        raise Forbidden(
            f"this token is an inference token of {principal.deployment!r}: it may only run it",
            hint="use an account token as the password",
        )
    return principal


def invoking_principal(
    header: str | bytes, authenticate: Authenticate, *, check_user: bool
) -> Principal:
    """The caller of ``/run`` and ``/job``: a bearer token (the service's own, or a user's) or,
    like ``/system``, Basic credentials. Not rate-checked: whoever runs the request does it.
    ``header`` as sent (bytes, from the fast path) or decoded."""
    raw = header if isinstance(header, bytes) else header.encode("latin-1")
    principal = None
    if raw[:5].lower() == b"basic":  # anything else is no Basic scheme: straight to the token
        text = header if isinstance(header, str) else header.decode("latin-1")
        principal = basic_principal(text, authenticate, check_user=check_user)
    if principal is None:
        principal = authenticate(raw)
    if principal is None:
        raise Unauthenticated(
            "a valid token is required",
            hint="send `Authorization: Bearer <service token>` (see GET /system/services/{name})",
        )
    return principal


def check_invocable(name: str, caller: Principal, owner: str, definition: dict[str, Any]) -> None:
    """Whether ``caller`` may run service ``name``: its own service token, or a user who may
    see it (others get the 404 of a missing service)."""
    if caller.deployment is not None:
        if caller.deployment != name:
            raise Unauthenticated(f"this token is not the token of service {name!r}")
        return
    if not may_use(caller, owner, definition):
        raise ServiceNotFound(name)


# -- as FastAPI dependencies ----------------------------------------------------------------------
def _dataplane(request: Request) -> DataPlane:
    dataplane: DataPlane = request.app.state.deps.dataplane
    return dataplane


def _check_user(request: Request) -> bool:
    return request.app.state.deps.tokens is not None


def system_principal(request: Request) -> Principal:
    """The caller of ``/system/…``: Basic (user + API token) or a bearer account token."""
    header = request.headers.get("authorization", "")
    dataplane = _dataplane(request)
    principal = basic_principal(header, dataplane.authenticate, check_user=_check_user(request))
    if principal is None:
        return account_principal(request)
    dataplane.check_rate(principal)
    return principal


def invoker(request: Request) -> Principal:
    """The caller of ``/job``, held to the rate limit here (the job runs later, as the
    platform)."""
    dataplane = _dataplane(request)
    principal = run_invoker(request)
    dataplane.check_rate(principal)
    return principal


def run_invoker(request: Request) -> Principal:
    """The caller of ``/run`` (the data plane's entry applies the rate limit)."""
    header = request.headers.get("authorization", "")
    return invoking_principal(
        header, _dataplane(request).authenticate, check_user=_check_user(request)
    )
