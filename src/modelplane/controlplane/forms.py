"""Job uploads: a multipart/form-data body of many files, parsed as it streams in.

An upload of a hundred small files is a hundred parts of a few dozen bytes each. Starlette's form
parser (``request.form()``, over python-multipart's byte-by-byte header state machine) spent
more CPU on those parts than the platform spent on the jobs they became: a quarter of the
platform's Python time in ``bench/jobs.py``'s multipart step. ``multipart`` (Marcel Hellkamp's,
the parser of Bottle) finds boundaries and header lines with ``bytes.find`` and hands over each
part's headers and payload without temporary files: 5.7 µs a part against Starlette's 32 here.
It installs as the module ``multipart.py``, beside python-multipart's ``multipart/`` shim (which
FastAPI's own form parsing still needs); the shim hands ``import multipart`` on to it.

Only this route parses with it; replicas (which run in model environments) keep
:mod:`modelplane.fronts.multipart`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import multipart

from modelplane.errors import InvalidInput, PayloadTooLarge

if not hasattr(multipart, "PushMultipartParser"):  # pragma: no cover - an install problem
    raise ImportError("the `multipart` package (>= 1.2) is not installed; pip install multipart")

MAX_FILES = 1000
"""Files of one upload at most (Starlette's default too): past it, 413."""
MAX_FIELD = 64 * 1024
"""Bytes of one non-file field (``prefix``) at most."""
MAX_FIELDS = 100


@dataclass
class Upload:
    files: list[tuple[str, bytes, str]] = field(default_factory=list)
    """``(filename, content, content type)`` of each file part, in order."""
    fields: dict[str, str] = field(default_factory=dict)
    """The other parts (the last of each name wins)."""


def boundary_of(content_type: str) -> str:
    kind, options = multipart.parse_options_header(content_type)
    if kind != "multipart/form-data":
        raise InvalidInput("send the files as multipart/form-data")
    boundary = options.get("boundary")
    if not boundary:
        raise InvalidInput("multipart/form-data request without a boundary")
    return boundary


async def read_upload(content_type: str, body: AsyncIterator[bytes]) -> Upload:
    """The parts of a multipart/form-data ``body`` (the request's stream): a file is a part
    with a ``filename`` (an empty one is named ``upload``), anything else a field."""
    boundary = boundary_of(content_type)
    reader = _Reader()
    try:
        parser = multipart.PushMultipartParser(boundary, max_header_count=16)
        async for data in body:
            if data:
                for event in parser.parse(data):
                    reader.on(event)
        parser.close()
    except multipart.ParserLimitReached as exc:
        raise PayloadTooLarge(f"multipart body over a limit: {exc}") from None
    except multipart.MultipartError as exc:
        raise InvalidInput(f"malformed multipart body: {exc}") from None
    return reader.upload


class _Reader:
    """Collects the parser's events: a segment's headers, its payload in chunks, its end."""

    def __init__(self) -> None:
        self.upload = Upload()
        self.fields = 0
        self.segment: multipart.MultipartSegment | None = None
        self.chunks: list[bytes] = []

    def on(self, event: multipart.MultipartSegment | bytes | None) -> None:
        if isinstance(event, multipart.MultipartSegment):
            self._start(event)
        elif event is not None:
            self.chunks.append(event)
            segment = self.segment
            if (
                segment is not None
                and segment.filename is None
                and segment.bytes_received > MAX_FIELD
            ):
                raise PayloadTooLarge(
                    f"form field {segment.name!r} is over {MAX_FIELD} bytes", limit=MAX_FIELD
                )
        elif self.segment is not None:
            self._end(self.segment)

    def _start(self, segment: multipart.MultipartSegment) -> None:
        self.segment, self.chunks = segment, []
        if segment.filename is not None:
            if len(self.upload.files) >= MAX_FILES:
                raise PayloadTooLarge(
                    f"upload with more than {MAX_FILES} files",
                    hint=f"send at most {MAX_FILES} files per request",
                    limit=MAX_FILES,
                )
            return
        self.fields += 1
        if self.fields > MAX_FIELDS:
            raise PayloadTooLarge(
                f"upload with more than {MAX_FIELDS} form fields", limit=MAX_FIELDS
            )

    def _end(self, segment: multipart.MultipartSegment) -> None:
        chunks, self.segment, self.chunks = self.chunks, None, []
        content = bytes(chunks[0]) if len(chunks) == 1 else b"".join(chunks)
        if segment.filename is not None:
            ctype = segment.header("Content-Type") or "application/octet-stream"
            self.upload.files.append((segment.filename or "upload", content, ctype))
        elif segment.name:
            try:
                self.upload.fields[segment.name] = content.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"form field {segment.name!r} is not UTF-8 text") from None
