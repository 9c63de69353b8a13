"""Turn a raw request body into the inputs a model receives."""

from __future__ import annotations

from typing import Any

import orjson

from modelplane.errors import InvalidInput, UnsupportedMediaType
from modelplane.fronts.multipart import multipart_parts
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
