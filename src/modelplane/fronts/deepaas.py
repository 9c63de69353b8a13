"""The DEEPaaS front, replica side: DEEPaaS v2 requests in, DEEPaaS v2 responses out.

The gateway (or ``modelplane run``) recognises the paths and packs what the replica needs into
the frame's params (see :func:`pack_params`); this codec reads the predict arguments as DEEPaaS
2.6 does with webargs 5 — each argument from its ``location`` if the field names one, else from
the query string, then the form (urlencoded or multipart), then a JSON body — and loads them with
the model's own marshmallow schema, so conversions, defaults and error messages are DEEPaaS's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import orjson

from modelplane.errors import InvalidInput, ModelFailed, ModelplaneError, NotFound
from modelplane.fronts.deepaas_swagger import swagger
from modelplane.fronts.multipart import multipart_parts
from modelplane.model.contract import FileInput, FileOutput, LoadedModel, encode_output
from modelplane.model.deepaas import (
    ACCEPT,
    DeepaasCall,
    DeepaasModel,
    DeepaasOutput,
    InvalidArguments,
    field_location,
    is_multiple,
)

OPS = (b"predict", b"models", b"model", b"swagger")
_JSON_UTF8 = b"application/json; charset=utf-8"
_MAX_PARAMS = 60_000  # the frame's meta field is at most 64 KiB
_SKIP_HEADERS = frozenset({b"authorization", b"cookie", b"host", b"content-length", b"connection"})
Multi = dict[str, list[Any]]


class DeepaasArgumentsError(InvalidArguments):
    """Invalid arguments on the DEEPaaS front: the body is the messages, as webargs sends them
    (``{"field": ["message"]}``, nested for nested fields, list items under their index)."""

    def to_dict(self) -> dict[str, Any]:
        return self.messages if isinstance(self.messages, dict) else {"_schema": self.messages}


class DeepaasBadJson(DeepaasArgumentsError):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "invalid_json"


def pack_params(
    op: bytes, path: bytes, name: bytes, query: bytes, headers: list[tuple[bytes, bytes]]
) -> bytes:
    """``op \\0 path \\0 name \\0 query (\\0 header:value)*`` — no part may hold a NUL byte."""
    parts = [op, path, name, query]
    size = sum(len(p) + 1 for p in parts)
    for key, value in headers:
        if key in _SKIP_HEADERS or b"\x00" in value:
            continue
        item = key + b":" + value
        if size + len(item) + 1 > _MAX_PARAMS and key != b"accept":
            continue
        parts.append(item)
        size += len(item) + 1
    return b"\x00".join(parts)


def unpack_params(params: bytes) -> tuple[bytes, str, str, bytes, Multi]:
    parts = params.split(b"\x00")
    if len(parts) < 4 or parts[0] not in OPS:
        raise InvalidInput("malformed DEEPaaS request parameters")
    headers: Multi = {}
    for item in parts[4:]:
        key, _, value = item.partition(b":")
        headers.setdefault(key.decode("latin-1").lower(), []).append(
            value.strip().decode("latin-1")
        )
    return (
        parts[0],
        parts[1].decode("utf-8", "replace"),
        parts[2].decode("utf-8", "replace"),
        parts[3],
        headers,
    )


class DeepaasCodec:
    def decode(self, model: LoadedModel, content_type: str, params: bytes, body: bytes) -> Any:
        try:
            return self._decode(model, content_type, params, body)
        except ModelplaneError:
            raise
        except Exception as exc:  # the model's own fields run here: never break the replica
            raise model.failure(exc) from None

    def _decode(self, model: LoadedModel, content_type: str, params: bytes, body: bytes) -> Any:
        adapter = _adapter(model)
        op, _path, name, query, headers = unpack_params(params)
        if op in (b"model", b"predict") and name != adapter.name:
            raise NotFound(
                f"no DEEPaaS model {name!r} here; this deployment serves {adapter.name!r}"
            )
        if op != b"predict":
            return DeepaasCall(op.decode())
        args = _Arguments(content_type, query, body, headers)
        raw: dict[str, Any] = {}
        for argname, f in adapter.predict_args.items():
            key = getattr(f, "data_key", None) or argname
            value = args.find(key, f)
            if value is not _MISSING:
                raw[key] = value
        try:
            kwargs = adapter.load_args(raw)
        except InvalidArguments as exc:
            raise DeepaasArgumentsError(exc.messages) from None
        accept = kwargs.get(ACCEPT, "application/json")
        return DeepaasCall("predict", kwargs, str(accept))

    def encode(self, model: LoadedModel, result: Any, params: bytes) -> tuple[int, bytes, bytes]:
        adapter = _adapter(model)
        op, path, _name, _query, _headers = unpack_params(params)
        if op == b"models":
            href = path.rstrip("/") + "/" + adapter.name
            return 200, _JSON_UTF8, _json({"models": [_model_entry(adapter, result, href)]})
        if op == b"model":
            return 200, _JSON_UTF8, _json(_model_entry(adapter, result, path.rstrip("/")))
        if op == b"swagger":
            base = path[: -len("/swagger.json")] if path.endswith("/swagger.json") else ""
            return 200, _JSON_UTF8, _json(swagger(adapter, base))
        assert isinstance(result, DeepaasOutput)
        return _prediction(adapter, result)


def _adapter(model: LoadedModel) -> DeepaasModel:
    adapter = model.instance
    if not isinstance(adapter, DeepaasModel):
        raise NotFound(
            f"model {model.metadata.name!r} is not a DEEPaaS module",
            hint="deploy it with model.loader: deepaas, or use the native predict API",
        )
    return adapter


def _json(value: Any) -> bytes:
    body, _ = encode_output(value)
    return body


def _model_entry(adapter: DeepaasModel, meta: Any, href: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": adapter.name,
        "name": adapter.name,
        "links": [{"rel": "self", "href": href}],
    }
    entry.update(meta if isinstance(meta, dict) else {})
    return entry


def _prediction(adapter: DeepaasModel, out: DeepaasOutput) -> tuple[int, bytes, bytes]:
    value = out.value
    accept = out.accept or "application/json"
    if accept not in ("application/json", "*/*"):
        if isinstance(value, FileOutput):
            value = value.data
        if isinstance(value, str):
            body = value.encode()
        elif isinstance(value, bytes | bytearray | memoryview):
            body = bytes(value)
        else:
            body = _json(value)
        return 200, accept.encode("latin-1"), body
    schema = adapter.response_schema_class()
    if schema is not None:
        from marshmallow import ValidationError

        try:
            schema().load(value)
        except ValidationError as exc:
            raise ModelFailed(
                f"model {adapter.name!r} returned a response that does not match its schema: "
                f"{exc.messages}",
                model=adapter.name,
            ) from None
        return 200, _JSON_UTF8, _json_result(adapter, value)
    return 200, _JSON_UTF8, _json_result(adapter, {"status": "OK", "predictions": value})


def _json_result(adapter: DeepaasModel, value: Any) -> bytes:
    try:
        return _json(value)
    except TypeError as exc:
        raise ModelFailed(
            f"model {adapter.name!r} returned a value that cannot be sent as JSON: {exc}",
            hint="return JSON-able values, or ask for another type with the accept argument",
            model=adapter.name,
        ) from None


def train_arguments(
    model: LoadedModel, content_type: str, query: bytes, body: bytes
) -> dict[str, Any]:
    """The arguments of ``POST …/train/``, read and loaded with the module's train fields."""
    adapter = _adapter(model)
    args = _Arguments(content_type, query, body, {})
    raw: dict[str, Any] = {}
    for argname, f in adapter.train_args.items():
        key = getattr(f, "data_key", None) or argname
        value = args.find(key, f)
        if value is not _MISSING:
            raw[key] = value
    try:
        return adapter.load_args(raw, train=True)
    except InvalidArguments as exc:
        raise DeepaasArgumentsError(exc.messages) from None


# -- reading arguments as webargs 5 does -------------------------------------------------------
class _Missing:
    pass


_MISSING = _Missing()


class _Arguments:
    def __init__(self, content_type: str, query: bytes, body: bytes, headers: Multi) -> None:
        self.content_type = content_type
        self.body = body
        self.headers = headers
        self._query: Multi | None = None
        self._query_raw = query
        self._form: Multi | None = None
        self._json: Any = _MISSING
        self._json_read = False
        self._readers: dict[str, Callable[[], Any]] = {
            "querystring": self.query,
            "query": self.query,
            "form": self.form,
            "json": self.json,
            "headers": lambda: self.headers,
        }

    def find(self, key: str, f: Any) -> Any:
        location = field_location(f)
        if location in ("files",):
            raise InvalidInput(f"argument {key!r}: webargs cannot read the 'files' location")
        locations = [location] if location else ["querystring", "form", "json"]
        multiple = is_multiple(f)
        for loc in locations:
            reader = self._readers.get(loc)
            if reader is None:
                continue  # cookies and the like never reach the replica: absent
            source = reader()
            if loc == "json":
                value = _json_value(source, key, multiple)
            elif loc == "headers":
                values = source.get(key.lower())
                value = _MISSING if not values else (values if multiple else values[0])
            else:
                values = source.get(key)
                value = _MISSING if not values else (values if multiple else values[0])
            if value is not _MISSING:
                return value
        return _MISSING

    def query(self) -> Multi:
        if self._query is None:
            self._query = _multi(parse_qsl(self._query_raw.decode("latin-1"), True))
        return self._query

    def form(self) -> Multi:
        if self._form is None:
            base = self.content_type.split(";", 1)[0].strip().lower()
            if base == "multipart/form-data":
                self._form = _multipart(self.body, self.content_type)
            elif base == "application/x-www-form-urlencoded":
                self._form = _multi(
                    parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True)
                )
            else:
                self._form = {}
        return self._form

    def json(self) -> Any:
        if not self._json_read:
            self._json_read = True
            base = self.content_type.split(";", 1)[0].strip().lower()
            is_json = base == "application/json" or (
                base.startswith("application/") and base.endswith("+json")
            )
            if is_json and self.body:
                try:
                    self._json = orjson.loads(self.body)
                except orjson.JSONDecodeError:
                    raise DeepaasBadJson({"json": ["Invalid JSON body."]}) from None
        return self._json


def _json_value(data: Any, key: str, multiple: bool) -> Any:
    if not isinstance(data, dict) or key not in data:
        return _MISSING
    value = data[key]
    if multiple and value is not None and not isinstance(value, list):
        return [value]
    return value


def _multi(pairs: list[tuple[str, str]]) -> Multi:
    out: Multi = {}
    for k, v in pairs:
        out.setdefault(k, []).append(v)
    return out


def _multipart(body: bytes, content_type: str) -> Multi:
    """Form fields as strings and file parts as :class:`FileInput`, in order, repeats kept."""
    fields: Multi = {}
    for part in multipart_parts(body, content_type):
        value: Any = (
            part.data.decode("utf-8", "replace")
            if part.filename is None
            else FileInput(part.name, part.filename, part.content_type, part.data)
        )
        fields.setdefault(part.name, []).append(value)
    return fields


CODEC = DeepaasCodec()
