"""Validation of bucket names, object keys and listing prefixes.

Pure functions, no I/O. Every storage backend calls them before it touches the world, so a key that
is refused here is refused the same way by the local filesystem store and by S3. The rules are
stricter than S3's own: a key is also a relative path on the local store, so anything a filesystem
would read as a path trick (``..``, ``.``, a leading ``/``, a backslash, an empty segment) is
rejected everywhere, which keeps the two backends interchangeable.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import Any

from modelplane.errors import InvalidInput

__all__ = [
    "BUCKET_SCHEMA",
    "KEY_SCHEMA",
    "MAX_KEY_BYTES",
    "PREFIX_SCHEMA",
    "validate_bucket_name",
    "validate_content_type",
    "validate_key",
    "validate_prefix",
]

#: S3's limit on the length of an object key, in bytes of UTF-8.
MAX_KEY_BYTES = 1024

_BUCKET_MIN = 3
_BUCKET_MAX = 63
# Lowercase letters, digits, hyphens and dots; first and last character a letter or a digit.
_BUCKET_RE = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")
# RFC 6838 restricted names for type and subtype, then printable ASCII for any parameters.
_CONTENT_TYPE_RE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*(;[ -~]*)?"
)
_CONTENT_TYPE_MAX = 255

# The rules below as the OpenAPI document states them (JSON Schema fragments). Where a rule is
# about bytes (a key's 1024 bytes of UTF-8) the document states a stricter bound in characters,
# so that whatever it allows, the API accepts.
BUCKET_SCHEMA: dict[str, Any] = {
    "minLength": _BUCKET_MIN,
    "maxLength": _BUCKET_MAX,
    "pattern": r"^(?!\d+\.\d+\.\d+\.\d+$)(?!.*\.\.)[a-z0-9]([a-z0-9.-]*[a-z0-9])?$",
    "description": "3 to 63 lowercase letters, digits, '-' and '.', starting and ending with a "
    "letter or a digit; no '..'; not an IPv4 address",
}
_SEGMENT = r"(?!\.\.?(/|$))[^/\\\x00-\x1f\x7f-\x9f]{1,63}"
KEY_SCHEMA: dict[str, Any] = {
    "minLength": 1,
    "maxLength": MAX_KEY_BYTES // 4,
    "pattern": rf"^{_SEGMENT}(/{_SEGMENT})*$",
    "description": "'/'-separated segments, none empty, '.' or '..'; no backslash, no control "
    "character; at most 1024 bytes of UTF-8",
}
PREFIX_SCHEMA: dict[str, Any] = {
    "maxLength": MAX_KEY_BYTES // 4,
    "pattern": rf"^({_SEGMENT}/)*[^/\\\x00-\x1f\x7f-\x9f]*$",
    "description": "complete segments as in a key, then a partial one (maybe empty)",
}


def validate_bucket_name(name: object) -> str:
    """Return ``name`` if it is a valid S3 bucket name, else raise :class:`InvalidInput`.

    The rules are S3's general-purpose bucket rules: 3 to 63 characters, lowercase letters,
    digits, hyphens and dots, starting and ending with a letter or a digit, no two dots in a row,
    and not shaped like an IPv4 address.
    """
    if not isinstance(name, str):
        raise InvalidInput(f"bucket name must be a string, not {type(name).__name__}")
    if not _BUCKET_MIN <= len(name) <= _BUCKET_MAX:
        raise InvalidInput(
            f"bucket name {name!r} is {len(name)} characters long; "
            f"it must be {_BUCKET_MIN} to {_BUCKET_MAX}",
            bucket=name,
        )
    if not _BUCKET_RE.fullmatch(name):
        raise InvalidInput(
            f"bucket name {name!r} is invalid: use lowercase letters, digits, hyphens and dots, "
            "and start and end with a letter or a digit",
            bucket=name,
        )
    if ".." in name:
        raise InvalidInput(f"bucket name {name!r} must not contain two dots in a row", bucket=name)
    if name[0].isdigit() and _looks_like_ipv4(name):
        raise InvalidInput(
            f"bucket name {name!r} must not be formatted as an IP address", bucket=name
        )
    return name


def validate_key(key: object) -> str:
    """Return ``key`` if it is a safe object key, else raise :class:`InvalidInput`.

    A key is a ``/``-separated relative path of non-empty segments. Refused: the empty key,
    control characters (NUL included), a leading ``/``, backslashes, ``.`` and ``..`` segments,
    empty segments (``a//b``, or a trailing ``/``), and keys over 1024 bytes of UTF-8.
    """
    text = _check_text(key, "object key")
    if not text:
        raise InvalidInput("object key must not be empty", key=text)
    _check_common(text, "object key")
    for segment in text.split("/"):
        _check_segment(text, segment, "object key")
    return text


def validate_prefix(prefix: object, *, what: str = "prefix") -> str:
    """Return ``prefix`` if it can select keys in a listing, else raise :class:`InvalidInput`.

    The empty prefix selects everything. A prefix follows the key rules for its complete
    segments; its last segment may be partial (``"in/ima"`` selects ``"in/image.png"``), and may
    be empty (``"in/"``). ``what`` names the argument in messages (``"start_after"``).
    """
    text = _check_text(prefix, what)
    if not text:
        return text
    _check_common(text, what)
    *complete, _partial = text.split("/")
    for segment in complete:
        _check_segment(text, segment, what)
    return text


def validate_content_type(content_type: object) -> str:
    """Return ``content_type`` if it can be stored as a media type, else raise InvalidInput.

    It travels as an HTTP header on S3, so it must be printable ASCII without line breaks, and
    look like ``type/subtype`` (parameters such as ``; charset=utf-8`` are allowed).
    """
    text = _check_text(content_type, "content type")
    if not _CONTENT_TYPE_RE.fullmatch(text) or len(text) > _CONTENT_TYPE_MAX:
        raise InvalidInput(
            f"content type {_shorten(text)!r} is invalid: expected 'type/subtype', printable "
            f"ASCII, at most {_CONTENT_TYPE_MAX} characters",
            content_type=text,
        )
    return text


def _check_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, not {type(value).__name__}")
    return value


def _check_common(text: str, what: str) -> None:
    """Checks shared by keys and prefixes: characters, absolute paths, length."""
    # Printable ASCII has no control character: most keys need no look at each character.
    for char in () if text.isascii() and text.isprintable() else text:
        if unicodedata.category(char) == "Cc":
            raise InvalidInput(
                f"{what} {text!r} contains the control character U+{ord(char):04X}", key=text
            )
    if text.startswith("/"):
        raise InvalidInput(f"{what} {text!r} must be relative: remove the leading '/'", key=text)
    if "\\" in text:
        raise InvalidInput(
            f"{what} {text!r} contains a backslash; separate segments with '/'", key=text
        )
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        # Lone surrogates (from a badly decoded file name) cannot be stored under any backend.
        raise InvalidInput(f"{what} {text!r} is not valid Unicode text", key=text) from exc
    if size > MAX_KEY_BYTES:
        raise InvalidInput(
            f"{what} {_shorten(text)!r} is {size} bytes in UTF-8; the limit is {MAX_KEY_BYTES}",
            key=text,
        )


def _check_segment(text: str, segment: str, what: str) -> None:
    if segment == "":
        raise InvalidInput(
            f"{what} {text!r} contains an empty segment ('//' or a trailing '/')", key=text
        )
    if segment in (".", ".."):
        raise InvalidInput(f"{what} {text!r} contains a {segment!r} segment", key=text)


def _looks_like_ipv4(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def _shorten(text: str, limit: int = 60) -> str:
    """Keep messages about over-long keys readable."""
    return text if len(text) <= limit else text[:limit] + "…"
