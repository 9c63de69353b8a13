"""Turn a raw request body into the inputs a model receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from python_multipart.multipart import MultipartParser, parse_options_header

from modelplane.errors import InvalidInput, UnsupportedMediaType
from modelplane.model.contract import FileInput, ModelMetadata


def decode_inputs(body: bytes, content_type: str, metadata: ModelMetadata) -> tuple[Any, bool]:
    """Return ``(inputs, is_json)``. JSON inputs are later checked against the model's schema."""
    base = content_type.split(";", 1)[0].strip().lower()
    if base in ("", "application/json") or base.endswith("+json"):
        if not body:
            raise InvalidInput("empty request body; send a JSON document")
        try:
            return orjson.loads(body), True
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"request body is not valid JSON: {exc}") from None
    if base == "multipart/form-data":
        return decode_multipart(body, content_type, metadata), False
    if metadata.accepts_type(base):
        return {"file": FileInput("file", "upload", base, body)}, False
    raise UnsupportedMediaType(
        f"model {metadata.name!r} does not accept {base!r}; it accepts "
        f"{', '.join(metadata.accepts)} (or multipart/form-data with such files)",
    )


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
    except InvalidInput:
        raise
    except Exception as exc:  # the parser's own error types vary between releases
        raise InvalidInput(f"malformed multipart body: {exc}") from None
    return parts


def decode_multipart(body: bytes, content_type: str, metadata: ModelMetadata) -> dict[str, Any]:
    """Fields (JSON if they parse as JSON, else text) and files the model accepts; a name
    given more than once becomes the list of its values, in order."""
    fields: dict[str, Any] = {}
    repeated: set[str] = set()

    def put(name: str, value: Any) -> None:
        if name not in fields:
            fields[name] = value
        elif name in repeated:
            fields[name].append(value)
        else:
            fields[name] = [fields[name], value]
            repeated.add(name)

    for part in multipart_parts(body, content_type):
        if part.filename is None:
            try:
                put(part.name, orjson.loads(part.data))
            except orjson.JSONDecodeError:
                put(part.name, part.data.decode("utf-8", "replace"))
            continue
        if not metadata.accepts_type(part.content_type):
            raise UnsupportedMediaType(
                f"file {part.filename!r} has type {part.content_type!r}; model "
                f"{metadata.name!r} accepts {', '.join(metadata.accepts)}"
            )
        put(part.name, FileInput(part.name, part.filename, part.content_type, part.data))
    if not fields:
        raise InvalidInput("multipart body has no fields")
    return fields
