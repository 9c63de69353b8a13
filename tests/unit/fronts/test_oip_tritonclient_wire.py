"""The codec against tritonclient's own request builder and response parser (no server)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from modelplane.fronts.oip import OipCodec
from modelplane.model.contract import LoadedModel, ModelMetadata

httpclient = pytest.importorskip("tritonclient.http")

TYPES: list[tuple[str, Any]] = [
    ("BOOL", np.bool_),
    ("INT8", np.int8),
    ("INT16", np.int16),
    ("INT32", np.int32),
    ("INT64", np.int64),
    ("UINT8", np.uint8),
    ("UINT16", np.uint16),
    ("UINT32", np.uint32),
    ("UINT64", np.uint64),
    ("FP16", np.float16),
    ("FP32", np.float32),
    ("FP64", np.float64),
    ("BYTES", np.object_),
]


class Doubler:
    def predict(self, inputs: dict[str, Any]) -> dict[str, Any]:
        x = inputs["x"]
        return {"y": x if x.dtype == np.bool_ else x * 2}  # bytes * 2 repeats them


def model_for(datatype: str) -> LoadedModel:
    tensors = {
        "inputs": [{"name": "x", "datatype": datatype, "shape": [-1, 3]}],
        "outputs": [{"name": "y", "datatype": datatype, "shape": [-1, 3]}],
    }
    return LoadedModel(Doubler(), ModelMetadata("doubler", "1", extra={"tensors": tensors}))


def sample(datatype: str, dtype: Any) -> np.ndarray:
    if datatype == "BYTES":
        return np.array([[b"a", b"", "é".encode()], [b"xyz", b"0", b"1"]], dtype=object)
    if datatype == "BOOL":
        return np.array([[True, False, True], [False, False, True]])
    return np.arange(6, dtype=dtype).reshape(2, 3)


@pytest.mark.parametrize(("binary_in", "binary_out"), [(True, True), (False, False), (True, False)])
@pytest.mark.parametrize(("datatype", "dtype"), TYPES)
def test_tritonclient_reads_what_the_codec_writes(
    datatype: str, dtype: Any, binary_in: bool, binary_out: bool
) -> None:
    x = sample(datatype, dtype)
    tensor = httpclient.InferInput("x", list(x.shape), datatype)
    tensor.set_data_from_numpy(x, binary_data=binary_in)
    wanted = [httpclient.InferRequestedOutput("y", binary_data=binary_out)]
    body, json_size = httpclient.InferenceServerClient.generate_request_body(
        [tensor], outputs=wanted, request_id="42"
    )
    params = b"n=dbl&r=1" + (b"" if json_size is None else f"&h={json_size}".encode())

    model = model_for(datatype)
    codec = OipCodec()
    inputs = codec.decode(model, "", params, body)
    assert inputs["x"].dtype == x.dtype and inputs["x"].tolist() == x.tolist()
    status, ctype, out = codec.encode(model, model.call(inputs), params)

    assert status == 200
    header_length = None
    if b";" in ctype:
        header_length = int(ctype.rpartition(b"=")[2])
    assert (header_length is not None) == binary_out
    result = httpclient.InferenceServerClient.parse_response_body(out, header_length=header_length)
    assert result.get_response()["id"] == "42"
    assert result.get_response()["model_name"] == "dbl"
    expected = (x if datatype == "BOOL" else x * 2).tolist()
    if datatype == "BYTES" and not binary_out:  # JSON strings come back as str, as from Triton
        expected = [[b.decode() for b in row] for row in expected]
    assert result.as_numpy("y").tolist() == expected
