"""Turn a raw request body into the inputs a model receives."""

from __future__ import annotations

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


def decode_multipart(body: bytes, content_type: str, metadata: ModelMetadata) -> dict[str, Any]:
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidInput("multipart/form-data request without a boundary")
    fields: dict[str, Any] = {}
    state: dict[str, Any] = {}

    def on_part_begin() -> None:
        state.clear()
        state["headers"] = {}
        state["data"] = []

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["hname"] = state.get("hname", b"") + data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["hvalue"] = state.get("hvalue", b"") + data[start:end]

    def on_header_end() -> None:
        state["headers"][state.pop("hname", b"").lower()] = state.pop("hvalue", b"")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        state["data"].append(data[start:end])

    def on_part_end() -> None:
        disposition = state["headers"].get(b"content-disposition", b"")
        _, opts = parse_options_header(disposition)
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        if not name:
            raise InvalidInput("multipart part without a field name")
        raw = b"".join(state["data"])
        filename = opts.get(b"filename")
        if filename is None:
            text = raw.decode("utf-8", "replace")
            try:
                fields[name] = orjson.loads(raw)
            except orjson.JSONDecodeError:
                fields[name] = text
            return
        ctype = state["headers"].get(b"content-type", b"application/octet-stream")
        ctype_s = ctype.decode("latin-1").split(";", 1)[0].strip().lower()
        if not metadata.accepts_type(ctype_s):
            raise UnsupportedMediaType(
                f"file {filename.decode('utf-8', 'replace')!r} has type {ctype_s!r}; model "
                f"{metadata.name!r} accepts {', '.join(metadata.accepts)}"
            )
        fields[name] = FileInput(name, filename.decode("utf-8", "replace"), ctype_s, raw)

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
    except UnsupportedMediaType:
        raise
    except Exception as exc:  # the parser's own error types vary between releases
        raise InvalidInput(f"malformed multipart body: {exc}") from None
    if not fields:
        raise InvalidInput("multipart body has no fields")
    return fields
