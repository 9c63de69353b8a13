"""Bearer-token authentication for the REST API, as a FastAPI dependency."""

from __future__ import annotations

from fastapi import Request

from modelplane.errors import Unauthenticated
from modelplane.security import Principal

QUERY_TOKEN_NAMES = ("token", "access_token", "api_key")


def current_principal(request: Request) -> Principal:
    """The caller. Tokens are accepted only in the Authorization header."""
    for name in QUERY_TOKEN_NAMES:
        if name in request.query_params:
            raise Unauthenticated(
                "tokens in the query string are refused (they leak into logs and histories)",
                hint="send `Authorization: Bearer <token>` instead",
            )
    authenticate = request.app.state.deps.gateway.authenticate
    principal = authenticate(request.headers.get("authorization", "").encode("latin-1"))
    if principal is None:
        raise Unauthenticated(
            "a valid bearer token is required",
            hint="set MODELPLANE_TOKEN or pass --token; `modelplane up` prints a token",
        )
    return principal
