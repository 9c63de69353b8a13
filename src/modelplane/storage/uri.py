"""Where a batch reads or writes: ``s3://bucket/prefix`` or a local folder, parsed once.

:func:`parse_location` is the only place that looks at a location's scheme. It returns a small
typed value; callers match on its type and pick a store, rather than passing strings around and
dispatching on prefixes again and again. Parsing is pure: a local path is neither resolved nor
checked for existence here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from modelplane.errors import InvalidInput
from modelplane.storage.keys import validate_bucket_name, validate_prefix

__all__ = ["LocalLocation", "Location", "S3Location", "parse_location"]

# "scheme://..." per RFC 3986; a Windows drive ("C:\\data") has no "//" and stays a path.
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_SUPPORTED = "s3://bucket/prefix, file:///absolute/path or a plain folder path"


@dataclass(frozen=True, slots=True)
class S3Location:
    """Objects in ``bucket`` whose keys start with ``prefix`` (``""`` for the whole bucket)."""

    bucket: str
    prefix: str = ""

    def __post_init__(self) -> None:
        validate_bucket_name(self.bucket)
        validate_prefix(self.prefix)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def key_for(self, name: str) -> str:
        """The key of ``name`` inside this location (``prefix`` joined with ``/`` if needed)."""
        if not self.prefix or self.prefix.endswith("/"):
            return self.prefix + name
        return f"{self.prefix}/{name}"


@dataclass(frozen=True, slots=True)
class LocalLocation:
    """A folder on the local filesystem, as given (relative paths stay relative)."""

    path: Path

    def __str__(self) -> str:
        return str(self.path)


Location = S3Location | LocalLocation


def parse_location(text: str) -> Location:
    """Parse ``text`` into an :class:`S3Location` or a :class:`LocalLocation`.

    Accepted: ``s3://bucket``, ``s3://bucket/prefix/``, ``file:///absolute/folder`` and any text
    without a scheme, taken as a folder path. Other schemes, a missing bucket, and bucket names
    or prefixes the key rules refuse raise :class:`InvalidInput` naming the location.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"location must be a non-empty string, got {text!r}; use {_SUPPORTED}")
    match = _SCHEME_RE.match(text)
    if match is None:
        return LocalLocation(Path(text))
    scheme = match.group(1).lower()
    if scheme == "s3":
        return _parse_s3(text, text[match.end() :])
    if scheme == "file":
        return _parse_file(text)
    raise InvalidInput(
        f"location {text!r} has the unsupported scheme {scheme!r}; use {_SUPPORTED}",
        location=text,
    )


def _parse_s3(text: str, rest: str) -> S3Location:
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise InvalidInput(
            f"location {text!r} names no bucket: use s3://bucket/prefix", location=text
        )
    try:
        return S3Location(bucket=bucket, prefix=prefix)
    except InvalidInput as exc:
        raise InvalidInput(f"location {text!r}: {exc.message}", location=text) from exc


def _parse_file(text: str) -> LocalLocation:
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost"):
        raise InvalidInput(
            f"location {text!r} names the host {parts.netloc!r}; only local files are supported",
            location=text,
        )
    if not parts.path.startswith("/"):
        raise InvalidInput(f"location {text!r} must be file:///absolute/path", location=text)
    if parts.query or parts.fragment:
        raise InvalidInput(f"location {text!r} must not have a query or fragment", location=text)
    return LocalLocation(Path(unquote(parts.path)))
