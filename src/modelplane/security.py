"""Principals and API tokens, shared by the control plane and the gateway.

Tokens are random strings shown once; only their SHA-256 is stored. The gateway checks a token on
every prediction, so lookups are cached in memory; the cache is dropped whenever a token changes,
so a revoked token fails on the very next request.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

TOKEN_PREFIX = "mp_"


@dataclass(frozen=True)
class Principal:
    user: str
    admin: bool = False

    def can_see(self, owner: str) -> bool:
        return self.admin or self.user == owner


LOCAL_USER = Principal("local", admin=True)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str | bytes) -> str:
    if isinstance(token, str):
        token = token.encode()
    return hashlib.sha256(token).hexdigest()


def bearer(header: bytes | str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None."""
    if not header:
        return None
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


class TokenCache:
    """``token -> Principal`` with the store behind it; ``lookup`` takes the token's hash."""

    def __init__(
        self, lookup: Callable[[str], Principal | None], max_entries: int = 10_000
    ) -> None:
        self._lookup = lookup
        self._cache: dict[str, Principal | None] = {}
        self._max = max_entries

    def principal(self, token: str) -> Principal | None:
        digest = hash_token(token)
        try:
            return self._cache[digest]
        except KeyError:
            pass
        found = self._lookup(digest)
        if len(self._cache) >= self._max:
            self._cache.clear()
        self._cache[digest] = found
        return found

    def invalidate(self) -> None:
        self._cache.clear()


Authenticate = Callable[[bytes], Principal | None]
"""What the gateway calls with a raw Authorization header."""


def authenticator(cache: TokenCache | None) -> Authenticate:
    """Build the gateway's check; ``None`` means single-user local mode (no token needed)."""
    if cache is None:
        return lambda _header: LOCAL_USER

    def check(header: bytes) -> Principal | None:
        token = bearer(header)
        return cache.principal(token) if token else None

    return check
