"""Scoped principals and token expiry in the cache, on an injected wall clock."""

from __future__ import annotations

from modelplane.errors import InsufficientResources, QuotaExceeded, TooManyRequests, error_from_dict
from modelplane.security import Principal, TokenCache, hash_token


def test_an_inference_token_predicts_with_its_deployment_only() -> None:
    scoped = Principal("ann", deployment="echo")
    assert scoped.can_predict("echo", "ann")
    assert not scoped.can_predict("other", "ann")
    assert not scoped.can_predict("echo", "bob"), "a new 'echo' of someone else is not covered"
    assert not scoped.can_see("ann"), "no other API for a scoped token"
    assert Principal("ann").can_predict("x", "ann") and not Principal("ann").can_predict("x", "bob")
    assert Principal("root", admin=True).can_predict("x", "bob")


def test_expired_tokens_fail_even_from_the_cache() -> None:
    now = [1000.0]
    table = {hash_token("t"): Principal("ann", token=1, expires_at=1010.0)}
    cache = TokenCache(table.get, wall=lambda: now[0])
    assert cache.principal("t") == Principal("ann")
    now[0] = 1010.0
    assert cache.principal("t") is None
    assert cache.principal("t") is None


def test_new_errors_round_trip_through_the_client() -> None:
    for err in (
        InsufficientResources("full"),
        QuotaExceeded("over"),
        TooManyRequests("slow down", retry_after=3),
    ):
        again = error_from_dict(err.status, err.to_dict())
        assert type(again) is type(err) and again.status == err.status
    assert TooManyRequests("x", retry_after=3).retry_after == 3
    assert QuotaExceeded("x").status == 403 and InsufficientResources("x").status == 409
