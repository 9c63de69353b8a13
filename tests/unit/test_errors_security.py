from __future__ import annotations

import orjson

from modelplane.errors import (
    DeploymentNotFound,
    InvalidSpec,
    ModelplaneError,
    NotFound,
    Unavailable,
    error_from_dict,
)
from modelplane.security import Principal, TokenCache, authenticator, bearer, hash_token, new_token


def test_errors_carry_status_and_round_trip() -> None:
    err = InvalidSpec("bad", hint="fix it", field="name")
    again = error_from_dict(422, err.to_dict())
    assert (
        type(again) is InvalidSpec and again.hint == "fix it" and again.fields == {"field": "name"}
    )
    assert isinstance(error_from_dict(404, DeploymentNotFound("x").to_dict()), NotFound)
    assert error_from_dict(503, {"error": "unavailable", "message": "m"}).status == 503
    assert type(error_from_dict(500, {"weird": 1})) is ModelplaneError
    assert Unavailable("x", retry_after=3).retry_after == 3


def test_tokens_are_hashed_and_cached_until_invalidated() -> None:
    token = new_token()
    table = {hash_token(token): Principal("ann")}
    calls: list[str] = []

    def lookup(digest: str) -> Principal | None:
        calls.append(digest)
        return table.get(digest)

    cache = TokenCache(lookup)
    check = authenticator(cache)
    assert check(f"Bearer {token}".encode()) == Principal("ann")
    assert check(f"bearer {token}".encode()) == Principal("ann")
    assert len(calls) == 1
    table.clear()
    cache.invalidate()
    assert check(f"Bearer {token}".encode()) is None
    assert check(b"Basic abc") is None and check(b"") is None
    assert bearer("Bearer  x ") == "x" and bearer("Bearer ") is None
    assert authenticator(None)(b"").admin


def test_a_reply_body_becomes_its_typed_error_once() -> None:
    from modelplane.errors import InvalidInput, ModelFailed, error_from_body

    err = error_from_body(500, orjson.dumps(ModelFailed("boom").to_dict()))
    assert type(err) is ModelFailed and err.message == "boom" and err.retryable
    plain = error_from_body(400, b"bad field x")
    assert type(plain) is InvalidInput and plain.message == "bad field x" and not plain.retryable
    odd = error_from_body(418, b"[1]")
    assert type(odd) is ModelplaneError and odd.status == 418


def test_retry_after_is_formatted_in_one_place() -> None:
    from modelplane.errors import Unavailable

    assert Unavailable("x", retry_after=0.2).retry_after_header == "1"
    assert Unavailable("x", retry_after=4.1).retry_after_header == "5"
    assert ModelplaneError("x").retry_after_header is None
