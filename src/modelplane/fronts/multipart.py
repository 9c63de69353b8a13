"""multipart/form-data bodies as a list of parts: the one parser of the native and DEEPaaS
inputs (the worker's native decoding and the DEEPaaS codec both call it; it lives with the
fronts so that the worker depends on the fronts and never the other way round)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

from modelplane.errors import InvalidInput, PayloadTooLarge

MAX_PARTS = 1000
"""Parts of one multipart body at most (Starlette's default too): past it, 413 before the model."""


@dataclass(frozen=True)
class Part:
    """One part of a multipart/form-data body."""

    name: str
    filename: str | None
    content_type: str
    data: bytes


def multipart_parts(body: bytes, content_type: str) -> list[Part]:
    """Every part of a multipart/form-data body, in order (python-multipart does the parsing)."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidInput("multipart/form-data request without a boundary")
    parts: list[Part] = []
    state: dict[str, Any] = {}

    def on_part_begin() -> None:
        if len(parts) >= MAX_PARTS:
            raise PayloadTooLarge(
                f"multipart body with more than {MAX_PARTS} parts",
                hint="send fewer files per request, or use a bucket and jobs",
                limit=MAX_PARTS,
            )
        state.clear()
        state.update(headers={}, data=[], hname=b"", hvalue=b"")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["hname"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["hvalue"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["hname"].lower()] = state["hvalue"]
        state["hname"] = state["hvalue"] = b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        state["data"].append(data[start:end])

    def on_part_end() -> None:
        _, opts = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        if not name:
            raise InvalidInput("multipart part without a field name")
        filename = opts.get(b"filename")
        ctype = state["headers"].get(b"content-type", b"application/octet-stream")
        parts.append(
            Part(
                name,
                None if filename is None else filename.decode("utf-8", "replace"),
                ctype.decode("latin-1").split(";", 1)[0].strip().lower(),
                b"".join(state["data"]),
            )
        )

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except (InvalidInput, PayloadTooLarge):
        raise
    except Exception as exc:  # the parser's own error types vary between releases
        raise InvalidInput(f"malformed multipart body: {exc}") from None
    return parts
