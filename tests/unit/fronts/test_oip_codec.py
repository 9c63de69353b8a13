"""The Open Inference Protocol codec: tensors in and out of a replica, no server."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pytest

from modelplane.errors import InvalidInput, ModelFailed, NotFound
from modelplane.fronts import codec
from modelplane.fronts.oip import CODEC, OipCodec, tensor_bytes, tensor_from_bytes
from modelplane.model.contract import LoadedModel, ModelMetadata

ALL_TYPES = {
    "BOOL": np.array([[True, False], [False, True]]),
    "INT8": np.array([[-128, 127], [0, 1]], dtype=np.int8),
    "INT16": np.array([[-32768, 32767], [0, 1]], dtype=np.int16),
    "INT32": np.array([[-(2**31), 2**31 - 1], [0, 1]], dtype=np.int32),
    "INT64": np.array([[-(2**63), 2**63 - 1], [0, 1]], dtype=np.int64),
    "UINT8": np.array([[0, 255], [1, 2]], dtype=np.uint8),
    "UINT16": np.array([[0, 65535], [1, 2]], dtype=np.uint16),
    "UINT32": np.array([[0, 2**32 - 1], [1, 2]], dtype=np.uint32),
    "UINT64": np.array([[0, 2**64 - 1], [1, 2]], dtype=np.uint64),
    "FP16": np.array([[0.5, -1.25], [65504.0, 0.0]], dtype=np.float16),
    "FP32": np.array([[0.1, -1e30], [3.5, 0.0]], dtype=np.float32),
    "FP64": np.array([[0.1, -1e300], [3.5, 0.0]], dtype=np.float64),
    "BYTES": np.array([[b"", b"caf\xc3\xa9"], [b"x" * 300, b"a"]], dtype=object),
}


class Echo:
    """Returns its input ``x`` as output ``y``."""

    def predict(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return {"y": inputs["x"], "n": np.array([inputs["x"].shape[0]], dtype=np.int64)}


def echo_model(datatype: str, shape: list[int] | None = None) -> LoadedModel:
    shape = shape or [-1, 2]
    tensors = {
        "inputs": [{"name": "x", "datatype": datatype, "shape": shape}],
        "outputs": [
            {"name": "y", "datatype": datatype, "shape": shape},
            {"name": "n", "datatype": "INT64", "shape": [1]},
        ],
    }
    return LoadedModel(Echo(), ModelMetadata("echo", "3", extra={"tensors": tensors}))


def roundtrip(
    model: LoadedModel, body: bytes, params: bytes = b"n=echo&r=1"
) -> tuple[int, bytes, bytes, Any]:
    c = OipCodec()
    inputs = c.decode(model, "application/json", params, body)
    status, ctype, out = c.encode(model, model.call(inputs), params)
    return status, ctype, out, inputs


def split(ctype: bytes, body: bytes) -> tuple[dict[str, Any], bytes]:
    if b"inference-header-content-length=" not in ctype:
        return orjson.loads(body), b""
    n = int(ctype.rpartition(b"=")[2])
    return orjson.loads(body[:n]), body[n:]


def json_request(array: np.ndarray, datatype: str, **extra: Any) -> bytes:
    if datatype == "BYTES":
        data: Any = [b.decode() for b in array.reshape(-1)]
    else:
        data = array.reshape(-1).tolist()
    tensor = {"name": "x", "datatype": datatype, "shape": list(array.shape), "data": data}
    return orjson.dumps({"inputs": [tensor], **extra})


def test_registered_as_the_oip_front() -> None:
    assert codec(b"oip") is CODEC


@pytest.mark.parametrize("datatype", sorted(ALL_TYPES))
def test_json_roundtrip_of_every_datatype(datatype: str) -> None:
    array = ALL_TYPES[datatype]
    status, ctype, body, inputs = roundtrip(
        echo_model(datatype), json_request(array, datatype, id="req-7")
    )
    assert inputs["x"].shape == (2, 2)
    assert inputs["x"].tolist() == array.tolist()
    assert status == 200 and ctype == b"application/json"
    response = orjson.loads(body)
    assert response["model_name"] == "echo" and response["model_version"] == "3"
    assert response["id"] == "req-7"
    y, n = response["outputs"]
    assert (y["name"], y["datatype"], y["shape"]) == ("y", datatype, [2, 2])
    if datatype == "BYTES":
        assert y["data"] == [b.decode() for b in array.reshape(-1)]
    else:  # FP32 is written in its shortest form (0.1, not 0.10000000149011612)
        assert np.array(y["data"], dtype=array.dtype).tolist() == array.reshape(-1).tolist()
    assert n == {"name": "n", "datatype": "INT64", "shape": [1], "data": [2]}


@pytest.mark.parametrize("datatype", sorted(ALL_TYPES))
def test_binary_roundtrip_of_every_datatype(datatype: str) -> None:
    array = ALL_TYPES[datatype]
    blob = tensor_bytes(array, datatype)
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": datatype,
                    "shape": [2, 2],
                    "parameters": {"binary_data_size": len(blob)},
                }
            ],
            "outputs": [{"name": "y", "parameters": {"binary_data": True}}],
        }
    )
    params = f"n=echo&r=2&h={len(header)}".encode()
    status, ctype, body, inputs = roundtrip(echo_model(datatype), header + blob, params)
    assert inputs["x"].tolist() == array.tolist()
    assert inputs["x"].flags.writeable
    assert status == 200 and ctype.startswith(b"application/octet-stream;")
    response, rest = split(ctype, body)
    [y] = response["outputs"]  # only the output asked for
    assert y["parameters"] == {"binary_data_size": len(blob)} and "data" not in y
    assert rest == blob
    decoded = tensor_from_bytes(memoryview(rest), datatype, (2, 2))
    assert decoded.tolist() == array.tolist()


def test_binary_layout_is_tritons() -> None:
    assert tensor_bytes(np.array([1, 2], dtype=np.int32), "INT32") == b"\1\0\0\0\2\0\0\0"
    assert tensor_bytes(np.array([True, False]), "BOOL") == b"\1\0"
    strings = np.array([b"ab", b""], dtype=object)
    assert tensor_bytes(strings, "BYTES") == struct.pack("<I", 2) + b"ab" + struct.pack("<I", 0)


def test_binary_data_output_request_parameter_applies_to_every_output() -> None:
    array = ALL_TYPES["FP32"]
    body = json_request(array, "FP32", parameters={"binary_data_output": True})
    _, ctype, out, _ = roundtrip(echo_model("FP32"), body)
    response, rest = split(ctype, out)
    sizes = [o["parameters"]["binary_data_size"] for o in response["outputs"]]
    assert sizes == [16, 8] and len(rest) == 24


def test_per_output_choice_mixes_json_and_binary() -> None:
    body = json_request(
        ALL_TYPES["INT32"],
        "INT32",
        outputs=[{"name": "n"}, {"name": "y", "parameters": {"binary_data": True}}],
    )
    _, ctype, out, _ = roundtrip(echo_model("INT32"), body)
    response, rest = split(ctype, out)
    n, y = response["outputs"]
    assert n["data"] == [2] and "parameters" not in n
    assert y["parameters"]["binary_data_size"] == 16 and len(rest) == 16


def test_nested_json_data_is_accepted() -> None:
    body = orjson.dumps(
        {"inputs": [{"name": "x", "datatype": "FP64", "shape": [2, 2], "data": [[1, 2], [3, 4]]}]}
    )
    _, _, _, inputs = roundtrip(echo_model("FP64"), body)
    assert inputs["x"].dtype == np.float64 and inputs["x"].tolist() == [[1, 2], [3, 4]]


def test_an_empty_batch_is_a_tensor_too() -> None:
    body = orjson.dumps(
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [0, 2], "data": []}]}
    )
    _, _, out, inputs = roundtrip(echo_model("FP32"), body)
    assert inputs["x"].shape == (0, 2)
    assert orjson.loads(out)["outputs"][0]["shape"] == [0, 2]


def bad(model: LoadedModel, request: Any, params: bytes = b"n=echo&r=3") -> str:
    body = request if isinstance(request, bytes) else orjson.dumps(request)
    with pytest.raises(InvalidInput) as err:
        OipCodec().decode(model, "application/json", params, body)
    return err.value.message


def tensor(**over: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1, 2], **over}]}


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (b"{not json", "not valid JSON"),
        ({"outputs": []}, "'inputs' list"),
        (tensor(name="z"), "no input 'z'"),
        (tensor(datatype="FP64"), "datatype 'FP64'; the model expects FP32"),
        (tensor(shape=[1, 3], data=[1, 2, 3]), "shape [1, 3]; the model expects [-1, 2]"),
        (tensor(shape=[2]), "shape [2]"),
        (tensor(shape=[1, -2]), "list of sizes"),
        (tensor(data=[1, 2, 3]), "3 elements; shape [1, 2] needs 2"),
        (tensor(data=["a", "b"]), "does not fit datatype FP32"),
        (tensor(data=[[1], [2, 3]]), "not a regular array"),
        (tensor(data=[None, {}]), "does not fit"),
        (tensor(data=[True, False]), "does not fit"),
        ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2]}]}, "neither 'data'"),
        ({"inputs": []}, "missing input 'x'"),
        ({**tensor(), "outputs": [{"name": "nope"}]}, "no output 'nope'"),
        (
            {**tensor(), "outputs": [{"name": "y", "parameters": {"classification": 2}}]},
            "classification",
        ),
        # parameters are objects wherever the protocol has them (a list here was a 500)
        (tensor(parameters=[1]), "input 'x': 'parameters' must be an object"),
        ({**tensor(), "parameters": [1]}, "the request: 'parameters' must be an object"),
        (
            {**tensor(), "outputs": [{"name": "y", "parameters": [None]}]},
            "output 'y': 'parameters' must be an object",
        ),
        (tensor(data=[1, 1e39]), "out of the range of FP32"),
        ({**tensor(), "outputs": [{"name": {}}]}, "no output {}"),
    ],
)
def test_bad_requests_are_400_with_a_reason(request_: Any, words: str) -> None:
    assert words in bad(echo_model("FP32"), request_)


def test_ints_are_range_checked_and_floats_not_truncated() -> None:
    int8 = echo_model("INT8")
    body = {"inputs": [{"name": "x", "datatype": "INT8", "shape": [1, 2], "data": [1, 300]}]}
    assert "out of the range of INT8" in bad(int8, body)
    body["inputs"][0]["data"] = [1, 2.5]
    assert "does not fit datatype INT8" in bad(int8, body)
    big = {"inputs": [{"name": "x", "datatype": "UINT64", "shape": [1, 2], "data": [-1, 5]}]}
    assert "out of the range of UINT64" in bad(echo_model("UINT64"), big)
    body = {"inputs": [{"name": "x", "datatype": "BOOL", "shape": [1, 2], "data": [1, 0]}]}
    assert "does not fit datatype BOOL" in bad(echo_model("BOOL"), body)


def binary_request(size: int, blob: bytes, datatype: str = "FP32") -> tuple[bytes, bytes]:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": datatype,
                    "shape": [1, 2],
                    "parameters": {"binary_data_size": size},
                }
            ]
        }
    )
    return header + blob, f"n=echo&r=4&h={len(header)}".encode()


def test_binary_size_mismatches_are_400() -> None:
    model = echo_model("FP32")
    assert "does not hold shape [1, 2]" in bad(model, *binary_request(4, b"\0" * 4))
    assert "runs past" in bad(model, *binary_request(12, b"\0" * 8))
    assert "no input claims" in bad(model, *binary_request(8, b"\0" * 12))
    body, _ = binary_request(8, b"\0" * 8)
    assert "not a length within" in bad(model, body, b"n=echo&h=99999")
    assert "not a length within" in bad(model, body, b"n=echo&h=x")


def test_malformed_binary_bytes_and_bools_are_400() -> None:
    strings = echo_model("BYTES")
    short = struct.pack("<I", 5) + b"ab"
    assert "runs past" in bad(strings, *binary_request(len(short), short, "BYTES"))
    one = struct.pack("<I", 1) + b"a"
    assert "after 1 of 2" in bad(strings, *binary_request(len(one), one, "BYTES"))
    assert "bytes 0 or 1" in bad(echo_model("BOOL"), *binary_request(2, b"\1\2", "BOOL"))


def test_a_model_without_tensors_is_refused() -> None:
    plain = LoadedModel(Echo(), ModelMetadata("plain"))
    assert "declares no tensor inputs" in bad(plain, tensor())


def test_the_version_in_the_path_must_be_the_models() -> None:
    with pytest.raises(NotFound, match="no version '9'"):
        OipCodec().decode(echo_model("FP32"), "", b"n=echo&v=9", orjson.dumps(tensor()))
    OipCodec().decode(echo_model("FP32"), "", b"n=echo&v=3", orjson.dumps(tensor()))


class Returns:
    def __init__(self, value: Any) -> None:
        self.value = value

    def predict(self, inputs: Any) -> Any:
        return self.value


def returning(value: Any, outputs: list[dict[str, Any]]) -> LoadedModel:
    tensors = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1]}], "outputs": outputs}
    return LoadedModel(Returns(value), ModelMetadata("m", extra={"tensors": tensors}))


def test_a_single_declared_output_may_be_returned_bare() -> None:
    model = returning([1, 2, 3], [{"name": "out", "datatype": "INT32", "shape": [-1]}])
    status, _, body = OipCodec().encode(model, model.call({}), b"n=dep")
    assert status == 200
    assert orjson.loads(body)["model_name"] == "dep"
    assert orjson.loads(body)["outputs"][0]["data"] == [1, 2, 3]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"other": 1}, "returned no output 'out'"),
        ({"out": [[1, 2]]}, "shape [1, 2], not the declared [-1]"),
        ({"out": ["x"]}, "is not INT32"),
    ],
)
def test_outputs_that_break_the_declaration_are_model_failures(value: Any, words: str) -> None:
    model = returning(value, [{"name": "out", "datatype": "INT32", "shape": [-1]}])
    with pytest.raises(ModelFailed, match=words.replace("[", r"\[").replace("]", r"\]")):
        OipCodec().encode(model, model.call({}), b"n=dep")


def test_plans_kept_between_decode_and_encode_are_bounded() -> None:
    c = OipCodec(max_pending=2)
    model = echo_model("FP32")
    for r in range(5):  # the model raised every time: encode never came
        c.decode(model, "", f"n=echo&r={r}".encode(), orjson.dumps(tensor()))
    assert len(c._plans) == 2
