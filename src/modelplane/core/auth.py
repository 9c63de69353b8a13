"""Bearer-token authentication for the REST and OSCAR APIs, as FastAPI dependencies."""

from __future__ import annotations

from fastapi import Request

from modelplane.errors import Forbidden, Unauthenticated
from modelplane.security import Principal

QUERY_TOKEN_NAMES = ("token", "access_token", "api_key")


async def current_principal(request: Request) -> Principal:
    """:func:`account_principal` as a FastAPI dependency: async, because FastAPI runs a plain
    function dependency in a worker thread, a thread hop on every API request for a look-up
    in memory (the data plane authenticates every prediction on the event loop too)."""
    return account_principal(request)


def account_principal(request: Request) -> Principal:
    """The caller, with a token good for the whole API. Tokens are accepted only in the
    Authorization header; a deployment's inference token is refused here (403)."""
    principal = prediction_principal(request)
    if principal.deployment is not None:
        raise Forbidden(
            f"this token is an inference token of deployment {principal.deployment!r}: it may "
            "only run predictions with it",
            hint="use an account token (`modelplane tokens create`) for everything else",
        )
    return principal


def refuse_query_tokens(request: Request) -> None:
    """401 for a token in the query string: it would leak into logs and histories."""
    for name in QUERY_TOKEN_NAMES:
        if name in request.query_params:
            raise Unauthenticated(
                "tokens in the query string are refused (they leak into logs and histories)",
                hint="send `Authorization: Bearer <token>` instead",
            )


def prediction_principal(request: Request) -> Principal:
    """The caller of a prediction route: account tokens and deployment inference tokens."""
    refuse_query_tokens(request)
    authenticate = request.app.state.deps.dataplane.authenticate
    principal = authenticate(request.headers.get("authorization", "").encode("latin-1"))
    if principal is None:
        raise Unauthenticated(
            "a valid bearer token is required",
            hint="set MODELPLANE_TOKEN or pass --token; `modelplane up` prints a token",
        )
    request.app.state.deps.dataplane.check_rate(principal)
    return principal
