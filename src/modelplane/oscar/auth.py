"""Who calls the OSCAR API: HTTP Basic or a bearer token for ``/system``, the service's token or a
user's token for ``/run`` and ``/job``.

modelplane has no passwords: a Basic ``user:password`` is accepted when ``password`` is a live API
token of ``user`` (``modelplane tokens create``; the admin's is printed by ``modelplane up``).
In single-user local mode every caller is the local user, as on the native API.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from modelplane.controlplane.auth import current_principal
from modelplane.errors import Forbidden, Unauthenticated
from modelplane.security import Principal

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


def _authenticate(request: Request, header: str) -> Principal | None:
    return request.app.state.deps.gateway.authenticate(header.encode("latin-1"))


def system_principal(request: Request) -> Principal:
    """The caller of ``/system/…``: Basic (user + API token) or a bearer account token."""
    header = request.headers.get("authorization", "")
    creds = basic_credentials(header)
    if creds is None:
        if header[:6].lower() == "basic ":
            raise Unauthenticated("malformed Basic credentials", hint=_HINT)
        return current_principal(request)
    user, password = creds
    principal = _authenticate(request, f"Bearer {password}")
    if principal is None or (request.app.state.deps.tokens is not None and principal.user != user):
        raise Unauthenticated(f"wrong user name or token for {user!r}", hint=_HINT)
    if principal.deployment is not None:
        raise Forbidden(
            f"this token is an inference token of {principal.deployment!r}: it may only run it",
            hint="use an account token as the password",
        )
    request.app.state.deps.gateway.check_rate(principal)
    return principal


def invoker(request: Request) -> Principal:
    """The caller of ``/run`` and ``/job``: a bearer token (the service's own, or a user's) or,
    like ``/system``, Basic credentials."""
    header = request.headers.get("authorization", "")
    if basic_credentials(header) is not None:
        return system_principal(request)
    principal = _authenticate(request, header)
    if principal is None:
        raise Unauthenticated(
            "a valid token is required",
            hint="send `Authorization: Bearer <service token>` (see GET /system/services/{name})",
        )
    request.app.state.deps.gateway.check_rate(principal)
    return principal
