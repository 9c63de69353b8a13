"""The Swagger 2.0 document of a DEEPaaS module, as ``deepaas-run`` 2.6 publishes it.

``deepaas-run`` documents its routes with aiohttp-apispec over apispec 3, which turns each
webargs/marshmallow argument into a parameter: the type and format of the field's class
(``Integer`` is ``integer``/``int32``, ``Float`` is ``number``/``float``, ``Url`` is
``string``/``url``...), the load default, the choices of ``OneOf``, the bounds of ``Range``, the
lengths of ``Length`` (items for lists and nested fields), a ``Regexp``'s pattern, the field's
own documented metadata (``description``, ``enum``, ``type: file``...), nested schemas as
references to ``definitions``. This module writes the same document from the same fields, so
Swagger UIs and generated clients see one API whichever server runs the module.

It runs in the replica, where the module's own marshmallow is importable.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from typing import Any

from modelplane.model.deepaas import DeepaasModel

_LOCATIONS = {
    "match_info": "path",
    "query": "query",
    "querystring": "query",
    "json": "body",
    "headers": "header",
    "cookies": "cookie",
    "form": "formData",
    "files": "formData",
}
_PROPERTY_KEYS = frozenset(
    [
        "format",
        "title",
        "description",
        "default",
        "multipleOf",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "maxProperties",
        "minProperties",
        "required",
        "enum",
        "type",
        "items",
        "allOf",
        "properties",
        "additionalProperties",
        "readOnly",
        "xml",
        "externalDocs",
        "example",
    ]
)
_REF = "#/definitions/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _response(name: str) -> dict[str, Any]:
    return {"schema": _ref(name), "description": ""}


def _string(description: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", **extra}
    if description:
        out["description"] = description
    return out


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = sorted(required)
    return out


# The response schemas DEEPaaS 2.6 declares for its own routes.
_STANDARD: dict[str, dict[str, Any]] = {
    "Failure": _object({"message": _string("Failure message")}, ["message"]),
    "Location": _object(
        {"rel": _string(), "href": _string(format="url"), "type": _string()},
        ["rel", "href", "type"],
    ),
    "Version": _object(
        {"version": _string(), "id": _string(), "links": _ref("Location"), "type": _string()},
        ["version", "id"],
    ),
    "Versions": _object({"versions": {"type": "array", "items": _ref("Version")}}),
    "ModelMeta": _object(
        {
            "id": _string("Model identifier"),
            "name": _string("Model name"),
            "description": _string("Model description"),
            "license": _string("Model license"),
            "author": _string("Model author"),
            "version": _string("Model version"),
            "url": _string("Model url"),
            "links": {"type": "array", "items": _ref("Location")},
        },
        ["id", "name", "description"],
    ),
    "Training": _object(
        {
            "uuid": _string("Training identifier", format="uuid"),
            "date": _string("Training start time", format="date-time"),
            "status": _string(
                "Training status", enum=["running", "error", "completed", "cancelled"]
            ),
            "message": _string("Optional message explaining status"),
        },
        ["uuid", "date", "status"],
    ),
    "TrainingList": _object({"trainings": {"type": "array", "items": _ref("Training")}}),
}
_PREDICTION = _object(
    {
        "status": _string("Response status message"),
        "predictions": _string("String containing predictions"),
    },
    ["status", "predictions"],
)


def schema_name(schema: Any) -> str:
    """aiohttp-apispec's name for a schema: its class name without a ``Schema`` suffix."""
    cls = schema if isinstance(schema, type) else type(schema)
    name = "Partial-" if getattr(schema, "partial", False) is True else ""
    name += cls.__name__
    if name.endswith("Schema"):
        return name[:-6] or name
    return name


class _Converter:
    """marshmallow fields to Swagger 2.0 properties; collects the nested schemas it meets."""

    def __init__(self) -> None:
        from marshmallow import fields  # the module's own marshmallow, in its replica

        self.fields = fields
        self.mapping: list[tuple[type, str | None, str | None]] = [
            (fields.Integer, "integer", "int32"),
            (fields.Float, "number", "float"),
            (fields.Decimal, "number", None),
            (fields.Number, "number", None),
            (fields.Boolean, "boolean", None),
            (fields.UUID, "string", "uuid"),
            (fields.DateTime, "string", "date-time"),
            (fields.Date, "string", "date"),
            (fields.Time, "string", None),
            (fields.Email, "string", "email"),
            (fields.Url, "string", "url"),
            (fields.String, "string", None),
            (fields.Dict, "object", None),
            (fields.List, "array", None),
            (fields.Raw, None, None),
            (fields.Field, None, None),
        ]
        self.definitions: dict[str, dict[str, Any]] = {}

    def _type_format(self, f: Any) -> dict[str, Any]:
        for cls in type(f).__mro__:  # the most specific mapped class wins
            for mapped, kind, fmt in self.mapping:
                if cls is mapped:
                    out: dict[str, Any] = {}
                    if kind:
                        out["type"] = kind
                    if fmt:
                        out["format"] = fmt
                    return out
        return {"type": "string"}

    def prop(self, f: Any) -> dict[str, Any]:
        out = self._type_format(f)
        meta = f.metadata if isinstance(getattr(f, "metadata", None), dict) else {}
        if "doc_default" in meta:
            out["default"] = meta["doc_default"]
        else:
            default = getattr(f, "load_default", None)
            if not _missing(default) and not callable(default):
                # a default the field cannot dump is left out, not fatal
                with contextlib.suppress(Exception):
                    out["default"] = f._serialize(default, None, None)
        validators = list(getattr(f, "validators", None) or [])
        choices = [v.choices for v in validators if hasattr(v, "choices")]
        if choices:
            common = list(dict.fromkeys(choices[0]))
            for other in choices[1:]:
                common = [c for c in common if c in other]
            out["enum"] = common
        if getattr(f, "dump_only", False):
            out["readOnly"] = True
        if getattr(f, "allow_none", False):
            out["x-nullable"] = True
        is_array = isinstance(f, self.fields.Nested | self.fields.List)
        for v in validators:
            if hasattr(v, "min") and hasattr(v, "max") and not hasattr(v, "equal"):
                if v.min is not None:
                    out["minimum"] = v.min
                if v.max is not None:
                    out["maximum"] = v.max
        lo, hi = ("minItems", "maxItems") if is_array else ("minLength", "maxLength")
        lengths = [v for v in validators if all(hasattr(v, a) for a in ("min", "max", "equal"))]
        for v in lengths:
            if v.min is not None:
                out[lo] = v.min
            if v.max is not None:
                out[hi] = v.max
        for v in lengths:
            if v.equal is not None:
                out[lo] = out[hi] = v.equal
        regexps = (v for v in validators if hasattr(getattr(v, "regex", None), "pattern"))
        pattern = next(regexps, None)
        if pattern is not None:
            out["pattern"] = pattern.regex.pattern
        for key, value in meta.items():
            if not isinstance(key, str):
                continue
            key = key.replace("_", "-") if key.startswith("x_") else key
            if key in _PROPERTY_KEYS or key.startswith("x-"):
                out[key] = value
        if isinstance(f, self.fields.Nested):
            ref = self.nested(f)
            if out and "$ref" in ref:
                out["allOf"] = [ref]
            else:
                out.update(ref)
        if isinstance(f, self.fields.List):
            out["items"] = self.prop(f.inner)
        if isinstance(f, self.fields.Dict) and getattr(f, "value_field", None) is not None:
            out["additionalProperties"] = self.prop(f.value_field)
        return out

    def nested(self, f: Any) -> dict[str, Any]:
        schema = f.schema
        name = schema_name(schema)
        if name not in self.definitions:
            self.definitions[name] = {}  # a placeholder first: schemas may refer to themselves
            self.definitions[name] = self.schema(schema)
        ref: dict[str, Any] = _ref(name)
        if getattr(schema, "many", False):
            return {"type": "array", "items": ref}
        return ref

    def schema(self, schema: Any) -> dict[str, Any]:
        declared = schema.fields if hasattr(schema, "fields") else schema._declared_fields
        properties: dict[str, Any] = {}
        required: list[str] = []
        for name, f in declared.items():
            key = getattr(f, "data_key", None) or name
            properties[key] = self.prop(f)
            if getattr(f, "required", False):
                required.append(key)
        return _object(properties, required)

    def parameter(self, name: str, f: Any, default_in: str = "query") -> dict[str, Any]:
        meta = f.metadata if isinstance(getattr(f, "metadata", None), dict) else {}
        location = _LOCATIONS.get(str(meta.get("location")), default_in)
        prop = self.prop(f)
        if location == "body":
            body: dict[str, Any] = {"type": "object", "properties": {name: prop}}
            if f.required:
                body["required"] = [name]
            return {"in": "body", "name": "body", "required": False, "schema": body}
        param: dict[str, Any] = {"in": location, "name": name, "required": bool(f.required)}
        if isinstance(f, self.fields.List):
            param["collectionFormat"] = "multi"
        param.update(prop)
        return param


def _missing(value: Any) -> bool:
    return type(value).__name__ == "_Missing"


def _op(tags: str, summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "responses": responses,
        "parameters": extra.pop("parameters", []),
        "tags": [tags],
        "summary": summary,
        "produces": extra.pop("produces", ["application/json"]),
        **extra,
    }


def _deepaas_version() -> str:
    try:
        return importlib.metadata.version("deepaas")
    except importlib.metadata.PackageNotFoundError:
        return "2.6.0"


def swagger(adapter: DeepaasModel, base: str) -> dict[str, Any]:
    """The document for the module's routes; ``base`` prefixes them on the platform."""
    conv = _Converter()
    name = adapter.name
    predict_params = [conv.parameter(k, f) for k, f in adapter.predict_args.items()]
    train_params = [conv.parameter(k, f) for k, f in adapter.train_args.items()]
    schema = adapter.response_schema_class()
    if schema is None:
        prediction = "Prediction"
        conv.definitions.setdefault("Prediction", _PREDICTION)
    else:
        prediction = schema_name(schema)
        conv.definitions.setdefault(prediction, conv.schema(schema))
    uuid_param = [{"in": "path", "name": "uuid", "required": True, "type": "string"}]
    failure = {"400": _response("Failure")}
    model_path = f"/v2/models/{name}"
    paths: dict[str, Any] = {
        "/": {
            "get": _op(
                "versions", "Get available API versions", {**failure, "200": _response("Versions")}
            )
        },
        "/v2/": {
            "get": _op(
                "versions",
                "Get V2 API version information",
                {**failure, "200": _response("Version")},
            )
        },
        "/v2/debug/": {
            "get": _op(
                "debug",
                "Return debug information if enabled by API.",
                {
                    "200": {"description": "Debug information if debug endpoint is enabled"},
                    "204": {"description": "Debug endpoint not enabled"},
                },
                produces=["text/plain"],
                description="Return debug information if enabled by API.",
            )
        },
        "/v2/models/": {
            "get": _op(
                "models",
                "Return loaded models and its information",
                {"200": _response("ModelMeta")},
                description=(
                    "DEEPaaS can load several models and server them on the same endpoint, "
                    "making a call to the root of the models namespace will return the loaded "
                    "models, as long as their basic metadata."
                ),
            )
        },
        f"{model_path}/": {
            "get": _op("models", "Return model's metadata", {"200": _response("ModelMeta")})
        },
        f"{model_path}/train/": {
            "post": _op("models", "Retrain model with available data", {}, parameters=train_params),
            "get": _op(
                "models",
                "Get a list of trainings (running or completed)",
                {"200": _response("TrainingList")},
            ),
        },
        f"{model_path}/train/{{uuid}}": {
            "get": _op(
                "models",
                "Get status of a training",
                {"200": _response("Training")},
                parameters=uuid_param,
            ),
            "delete": _op("models", "Cancel a running training", {}, parameters=uuid_param),
        },
        f"{model_path}/predict/": {
            "post": _op(
                "models",
                "Make a prediction given the input data",
                {**failure, "200": _response(prediction)},
                parameters=predict_params,
                produces=adapter.accept_choices or ["application/json"],
            )
        },
    }
    meta = adapter.get_metadata()
    doc: dict[str, Any] = {
        "swagger": "2.0",
        "info": {
            "title": "DEEP as a Service API endpoint",
            "version": _deepaas_version(),
            "description": (
                f"{meta.get('description') or name}\n\nThe DEEPaaS v2 API of model {name!r}, "
                "served by modelplane."
            ),
        },
        "externalDocs": {
            "description": "API documentation",
            "url": "https://deepaas.readthedocs.org/",
        },
        "paths": paths,
        "definitions": {**_STANDARD, **conv.definitions},
    }
    if base:
        doc["basePath"] = base
    return doc
