"""Open Inference Protocol v2 (KServe/Triton), the replica's half: tensors in, tensors out.

The gateway's router (:mod:`modelplane.gateway.oip`) forwards an infer request's raw body with
``params`` it can read without decoding the body: the deployment name, the version in the path,
the ``Inference-Header-Content-Length`` header and a request number. Here the JSON header is
parsed, each input tensor (JSON ``data`` or Triton's binary tensor data extension) is checked
against the tensors the model declares in ``modelplane.yaml`` (``extra.tensors``) and becomes a
numpy array; the model's result becomes the response's output tensors.

A model declares its tensors like this::

    extra:
      tensors:
        inputs: [{name: image, datatype: FP32, shape: [-1, 8, 8]}]
        outputs: [{name: digit, datatype: INT64, shape: [-1]}]

and receives ``{"image": ndarray}``; it returns a mapping of output names to array-likes (or, with
one declared output, that output's value).
"""

from __future__ import annotations

import math
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
import orjson

from modelplane.errors import InvalidInput, ModelFailed, NotFound
from modelplane.model.contract import LoadedModel

HEADER_LENGTH_PARAM = "inference-header-content-length"
"""The content-type parameter that tells the gateway's router the JSON header's length; the
router strips it and sends the ``Inference-Header-Content-Length`` response header instead."""

DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
# Which kinds of JSON numbers each datatype takes: no silent float->int truncation, no bools.
_JSON_KINDS = {"b": "b", "i": "iu", "u": "iu", "f": "iuf"}
_U32 = struct.Struct("<I")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]

    def accepts(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == len(self.shape) and all(
            want in (-1, got) for want, got in zip(self.shape, shape, strict=True)
        )


def declared(model: LoadedModel, kind: str) -> list[TensorSpec]:
    """The model's declared ``inputs`` or ``outputs`` (``extra.tensors`` in modelplane.yaml)."""
    tensors = model.metadata.extra.get("tensors")
    items = tensors.get(kind) if isinstance(tensors, dict) else None
    if not items:
        raise InvalidInput(
            f"model {model.metadata.name!r} declares no tensor {kind}, so it cannot be called "
            "through the Open Inference Protocol",
            hint="declare extra.tensors.inputs and .outputs (name, datatype, shape) in "
            "modelplane.yaml",
        )
    return [TensorSpec(t["name"], t["datatype"], tuple(t["shape"])) for t in items]


@dataclass(frozen=True)
class _Plan:
    """What the request asked of the response: kept from decode to encode."""

    request_id: str | None
    outputs: list[tuple[str, bool]] | None  # (name, binary); None: every declared output
    binary_default: bool


class OipCodec:
    """The ``oip`` front's :class:`modelplane.fronts.Codec`."""

    def __init__(self, max_pending: int = 65536) -> None:
        # decode() and encode() of one request share nothing but ``params``, which carries the
        # gateway's request number; the plan waits here in between. Bounded, because a request
        # whose model raises never reaches encode().
        self._plans: OrderedDict[bytes, _Plan] = OrderedDict()
        self._max_pending = max_pending

    # -- request ----------------------------------------------------------------------------
    def decode(self, model: LoadedModel, content_type: str, params: bytes, body: bytes) -> Any:
        p = parse_params(params)
        _check_version(model, p)
        header_length = p.get("h")
        split = len(body)
        if header_length is not None:
            if not header_length.isdigit() or int(header_length) > len(body):
                raise InvalidInput(
                    f"Inference-Header-Content-Length {header_length!r} is not a length within "
                    f"the body of {len(body)} bytes"
                )
            split = int(header_length)
        view = memoryview(body)
        request = _load_json(view[:split])
        inputs = _decode_inputs(model, request, view[split:])
        self._remember(params, _plan(model, request))
        return inputs

    def _remember(self, params: bytes, plan: _Plan) -> None:
        self._plans[params] = plan
        while len(self._plans) > self._max_pending:
            self._plans.popitem(last=False)

    # -- response ---------------------------------------------------------------------------
    def encode(self, model: LoadedModel, result: Any, params: bytes) -> tuple[int, bytes, bytes]:
        p = parse_params(params)
        plan = self._plans.pop(params, None) or _Plan(None, None, False)
        specs = {s.name: s for s in declared(model, "outputs")}
        if not isinstance(result, dict):
            if len(specs) != 1:
                raise _model_failed(model, f"returned a {type(result).__name__}, not a mapping")
            result = {next(iter(specs)): result}
        wanted = plan.outputs or [(name, plan.binary_default) for name in specs]
        outputs: list[dict[str, Any]] = []
        blobs: list[bytes] = []
        for name, binary in wanted:
            spec = specs[name]
            if name not in result:
                raise _model_failed(model, f"returned no output {name!r}")
            array = _to_array(model, spec, result[name])
            out: dict[str, Any] = {
                "name": name,
                "datatype": spec.datatype,
                "shape": list(array.shape),
            }
            if binary:
                blob = tensor_bytes(array, spec.datatype)
                out["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            else:
                out["data"] = _json_data(model, array, spec.datatype)
            outputs.append(out)
        response: dict[str, Any] = {
            "model_name": p.get("n") or model.metadata.name,
            "model_version": model.metadata.version,
        }
        if plan.request_id is not None:
            response["id"] = plan.request_id
        response["outputs"] = outputs
        header = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
        if not blobs:
            return 200, b"application/json", header
        ctype = f"application/octet-stream; {HEADER_LENGTH_PARAM}={len(header)}".encode()
        return 200, ctype, b"".join((header, *blobs))


CODEC = OipCodec()


# -- params ---------------------------------------------------------------------------------
def parse_params(params: bytes) -> dict[str, str]:
    """``n``: deployment, ``v``: version asked in the path, ``h``: header length, ``r``: number."""
    return dict(parse_qsl(params.decode("latin-1"), keep_blank_values=True))


def _check_version(model: LoadedModel, p: dict[str, str]) -> None:
    version = p.get("v")
    if version and version != model.metadata.version:
        raise NotFound(
            f"model {p.get('n') or model.metadata.name!r} has no version {version!r}; it serves "
            f"version {model.metadata.version!r}"
        )


# -- decoding -------------------------------------------------------------------------------
def _load_json(header: memoryview) -> dict[str, Any]:
    try:
        request = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the inference request header is not valid JSON: {exc}") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise InvalidInput("an inference request is a JSON object with an 'inputs' list")
    return request


def _decode_inputs(model: LoadedModel, request: dict[str, Any], binary: memoryview) -> Any:
    specs = {s.name: s for s in declared(model, "inputs")}
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    for item in request["inputs"]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidInput("each input is an object with a 'name'")
        name = item["name"]
        spec = specs.get(name)
        if spec is None:
            raise InvalidInput(
                f"model {model.metadata.name!r} has no input {name!r}; its inputs are "
                f"{', '.join(specs)}"
            )
        if name in inputs:
            raise InvalidInput(f"input {name!r} appears twice")
        shape = _check_header(spec, item)
        parameters = _parameters(item, f"input {name!r}")
        size = parameters.get("binary_data_size")
        if size is not None:
            if "data" in item:
                raise InvalidInput(f"input {name!r} has both 'data' and binary_data_size")
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise InvalidInput(
                    f"input {name!r}: binary_data_size {size!r} runs past the "
                    f"{len(binary)} bytes of binary data in the body"
                )
            inputs[name] = tensor_from_bytes(binary[offset : offset + size], spec.datatype, shape)
            offset += size
        elif "data" in item:
            inputs[name] = tensor_from_json(item["data"], spec.datatype, shape)
        elif "shared_memory_region" in parameters:
            raise InvalidInput(f"input {name!r}: shared memory inputs are not supported")
        else:
            raise InvalidInput(f"input {name!r} has neither 'data' nor binary_data_size")
    if offset != len(binary):
        raise InvalidInput(
            f"the body has {len(binary) - offset} bytes of binary data that no input claims"
        )
    missing = [n for n in specs if n not in inputs]
    if missing:
        raise InvalidInput(f"missing input {', '.join(map(repr, missing))}")
    return inputs


def _check_header(spec: TensorSpec, item: dict[str, Any]) -> tuple[int, ...]:
    datatype = item.get("datatype")
    if datatype != spec.datatype:
        raise InvalidInput(
            f"input {spec.name!r} has datatype {datatype!r}; the model expects {spec.datatype}"
        )
    raw = item.get("shape")
    if not isinstance(raw, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in raw
    ):
        raise InvalidInput(f"input {spec.name!r}: 'shape' must be a list of sizes >= 0")
    shape = tuple(raw)
    if not spec.accepts(shape):
        raise InvalidInput(
            f"input {spec.name!r} has shape {list(shape)}; the model expects "
            f"{list(spec.shape)} (-1: any size)"
        )
    return shape


def tensor_from_json(data: Any, datatype: str, shape: tuple[int, ...]) -> np.ndarray:
    """A tensor from its JSON ``data`` (flat in row-major order, or nested)."""
    dtype = DATATYPES[datatype]
    count = math.prod(shape)
    try:
        raw = np.asarray(data, dtype=object if datatype == "BYTES" else None)
    except ValueError:
        raise InvalidInput(f"tensor data of datatype {datatype} is not a regular array") from None
    if raw.size != count:
        raise InvalidInput(
            f"tensor data has {raw.size} elements; shape {list(shape)} needs {count}"
        )
    if count == 0:
        return np.empty(shape, dtype)
    if datatype == "BYTES":
        flat = raw.reshape(-1)
        if not all(isinstance(s, str) for s in flat):
            raise InvalidInput("BYTES tensor data in JSON must be strings")
        return _objects([s.encode() for s in flat]).reshape(shape)
    if raw.dtype.kind in "fO" and dtype.kind in "iu":
        # floats, or ints beyond int64 that numpy made floats: look at each element
        raw = _big_ints(np.asarray(data, dtype=object), dtype, datatype)
    if raw.dtype.kind not in _JSON_KINDS[dtype.kind]:
        raise InvalidInput(f"tensor data does not fit datatype {datatype}")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if raw.min() < info.min or raw.max() > info.max:
            raise InvalidInput(f"tensor data is out of the range of {datatype}")
    elif dtype.kind == "f" and np.abs(raw).max() > np.finfo(dtype).max:  # would be inf
        raise InvalidInput(f"tensor data is out of the range of {datatype}")
    return raw.astype(dtype.newbyteorder("="), copy=False).reshape(shape)


def _big_ints(raw: np.ndarray, dtype: np.dtype[Any], datatype: str) -> np.ndarray:
    flat = raw.reshape(-1).tolist()
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in flat):
        raise InvalidInput(f"tensor data does not fit datatype {datatype}")
    try:
        return np.array(flat, dtype=dtype)
    except OverflowError:
        raise InvalidInput(f"tensor data is out of the range of {datatype}") from None


def tensor_from_bytes(blob: memoryview, datatype: str, shape: tuple[int, ...]) -> np.ndarray:
    """A tensor from Triton's binary form: little-endian, row-major; BYTES length-prefixed."""
    count = math.prod(shape)
    if datatype == "BYTES":
        return _bytes_elements(blob, count).reshape(shape)
    dtype = DATATYPES[datatype]
    if len(blob) != count * dtype.itemsize:
        raise InvalidInput(
            f"binary tensor data of {len(blob)} bytes does not hold shape {list(shape)} of "
            f"{datatype} ({count * dtype.itemsize} bytes)"
        )
    if datatype == "BOOL" and count and np.frombuffer(blob, np.uint8).max() > 1:
        raise InvalidInput("BOOL binary tensor data must be bytes 0 or 1")
    # one copy, so the model gets a writable array in native byte order
    array = np.frombuffer(bytearray(blob), dtype=dtype)
    return array.astype(dtype.newbyteorder("="), copy=False).reshape(shape)


def _bytes_elements(blob: memoryview, count: int) -> np.ndarray:
    out = np.empty(count, dtype=object)
    pos, end = 0, len(blob)
    for i in range(count):
        if pos + 4 > end:
            raise InvalidInput(f"BYTES tensor data ends after {i} of {count} elements")
        (size,) = _U32.unpack_from(blob, pos)
        pos += 4
        if pos + size > end:
            raise InvalidInput(f"BYTES tensor element {i} runs past the end of its data")
        out[i] = bytes(blob[pos : pos + size])
        pos += size
    if pos != end:
        raise InvalidInput(f"BYTES tensor data has {end - pos} bytes after its {count} elements")
    return out


def _objects(items: list[bytes]) -> np.ndarray:
    # np.array(items) would make a fixed-width bytes array; a model gets Python bytes
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _plan(model: LoadedModel, request: dict[str, Any]) -> _Plan:
    request_id = request.get("id")
    parameters = _parameters(request, "the request")
    binary_default = bool(parameters.get("binary_data_output", False))
    asked = request.get("outputs")
    if asked is None:
        return _Plan(None if request_id is None else str(request_id), None, binary_default)
    if not isinstance(asked, list):
        raise InvalidInput("'outputs' must be a list")
    names = {s.name for s in declared(model, "outputs")}
    outputs: list[tuple[str, bool]] = []
    for item in asked:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or name not in names:
            raise InvalidInput(
                f"model {model.metadata.name!r} has no output {name!r}; its outputs are "
                f"{', '.join(sorted(names))}"
            )
        out_params = _parameters(item, f"output {name!r}")
        if "classification" in out_params:
            raise InvalidInput("the classification extension is not supported")
        outputs.append((name, bool(out_params.get("binary_data", binary_default))))
    return _Plan(None if request_id is None else str(request_id), outputs, binary_default)


def _parameters(item: dict[str, Any], what: str) -> dict[str, Any]:
    """``item``'s ``parameters``: an object (or absent), as the protocol defines them."""
    parameters = item.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise InvalidInput(f"{what}: 'parameters' must be an object")
    return parameters


# -- encoding -------------------------------------------------------------------------------
def _to_array(model: LoadedModel, spec: TensorSpec, value: Any) -> np.ndarray:
    try:
        if spec.datatype == "BYTES":
            raw = np.asarray(value, dtype=object)
            flat = [v.encode() if isinstance(v, str) else bytes(v) for v in raw.reshape(-1)]
            array = _objects(flat).reshape(raw.shape)
        else:
            array = np.asarray(value, dtype=DATATYPES[spec.datatype].newbyteorder("="))
    except (TypeError, ValueError) as exc:
        raise _model_failed(model, f"output {spec.name!r} is not {spec.datatype}: {exc}") from None
    if not spec.accepts(array.shape):
        raise _model_failed(
            model,
            f"output {spec.name!r} has shape {list(array.shape)}, not the declared "
            f"{list(spec.shape)}",
        )
    return array


def tensor_bytes(array: np.ndarray, datatype: str) -> bytes:
    """The binary form of a tensor (see :func:`tensor_from_bytes`)."""
    if datatype == "BYTES":
        return b"".join(_U32.pack(len(b)) + b for b in array.reshape(-1))
    return np.ascontiguousarray(array, dtype=DATATYPES[datatype]).tobytes()


def _json_data(model: LoadedModel, array: np.ndarray, datatype: str) -> Any:
    flat = array.reshape(-1)
    if datatype != "BYTES":
        return np.ascontiguousarray(flat)
    try:
        return [b.decode() for b in flat]
    except UnicodeDecodeError:
        raise _model_failed(
            model, "returned BYTES that are not UTF-8; ask for the output with binary_data"
        ) from None


def _model_failed(model: LoadedModel, what: str) -> ModelFailed:
    name = model.metadata.name
    return ModelFailed(
        f"model {name!r} {what}",
        hint="return a mapping of the output names in extra.tensors.outputs to arrays",
        model=name,
    )
