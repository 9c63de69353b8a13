"""Pieces shared by the hand-written path items of the gateway's fronts (see front_paths.py)."""

from __future__ import annotations

from typing import Any

from modelplane.spec.deployment import NAME_SCHEMA

REF = "#/components/schemas/"
SECURED: list[dict[str, list[str]]] = [{"HTTPBearer": []}]
"""The bearer token every route but the probes takes."""
PREDICTION_ERRORS = (401, 404, 413, 429, 500, 502, 503, 504)
"""What a request a replica answers may meet on the way: the data plane's errors."""


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


def json_response(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
}
_BEARER = {"WWW-Authenticate": {"description": "``Bearer``", "schema": {"type": "string"}}}

FRONT_ERROR: dict[str, Any] = {
    "type": "object",
    "description": "modelplane's error body: a code, a message, and what may help",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "hint": {"type": "string"},
        "details": {"type": "object"},
        "retry_after": {"type": "number"},
    },
}


def errors(schema: str, *statuses: int) -> dict[str, Any]:
    """Error responses with ``schema`` as their body: 401 with WWW-Authenticate, 429 and 503
    with Retry-After."""
    described = {
        400: "invalid input, with a message naming what is wrong",
        401: "no token, or a token that is not valid",
        403: "over the owner's quota (the message says what, and by how much)",
        404: "no such deployment (or one that is not yours), model, version or route",
        409: "not enough free resources on the node now (the message says what is short)",
        413: "the body is larger than the gateway takes",
        415: "an encoding the front does not read",
        429: "too many requests from this caller",
        500: "the model raised",
        502: "the replica failed while answering",
        503: "no replica could answer in time, or the model has not loaded yet",
        504: "the model took longer than the deployment's timeout",
    }
    out: dict[str, Any] = {}
    for status in statuses:
        headers = _BEARER if status == 401 else _RETRY_AFTER if status in (429, 503) else None
        out[str(status)] = json_response(ref(schema), described[status])
        if headers:
            out[str(status)]["headers"] = headers
    return out


def deployment_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", **NAME_SCHEMA},
    }
