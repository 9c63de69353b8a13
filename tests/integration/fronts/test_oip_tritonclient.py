"""Open Inference Protocol v2 on a real platform, driven by the official, unmodified tritonclient.

tritonclient.http is synchronous (gevent), so each call runs in a thread, with a client made in
that thread: a gevent client belongs to the thread (hub) that created it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from sklearn.datasets import load_digits
from tests.integration.conftest import Harness

httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

pytestmark = pytest.mark.integration
T = TypeVar("T")


async def triton(h: Harness, use: Callable[[Any], T]) -> T:
    """``use(client)`` in a worker thread, with a fresh InferenceServerClient."""

    def run() -> T:
        c = httpclient.InferenceServerClient(h.platform.url.removeprefix("http://"))
        try:
            return use(c)
        finally:
            c.close()

    return await asyncio.to_thread(run)


def auth(h: Harness) -> dict[str, str]:
    return {"Authorization": f"Bearer {h.platform.admin_token}"}


def images(n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return data.images[:n].astype(np.float32), data.target[:n]


def infer_digits(
    c: Any, h: Harness, batch: np.ndarray, binary_in: bool, binary_out: bool | None, **kw: Any
) -> Any:
    tensor = httpclient.InferInput("image", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch, binary_data=binary_in)
    outputs = None
    if binary_out is not None:
        outputs = [
            httpclient.InferRequestedOutput("digit", binary_data=binary_out),
            httpclient.InferRequestedOutput("probabilities", binary_data=binary_out),
        ]
    return c.infer("digits", [tensor], outputs=outputs, headers=auth(h), **kw)


@pytest.fixture
async def digits(harness: Harness, examples: Path) -> Harness:
    await harness.deploy("digits", examples / "digits")
    await harness.wait_ready("digits")
    return harness


async def test_health_server_and_model_metadata(digits: Harness) -> None:
    h = auth(digits)
    assert await triton(digits, lambda c: c.is_server_live())
    assert await triton(digits, lambda c: c.is_server_ready())
    server = await triton(digits, lambda c: c.get_server_metadata())
    assert server["name"] == "modelplane" and "binary_tensor_data" in server["extensions"]
    assert await triton(digits, lambda c: c.is_model_ready("digits", headers=h))
    assert await triton(digits, lambda c: c.is_model_ready("digits", "1.0", headers=h))
    assert not await triton(digits, lambda c: c.is_model_ready("digits", "7", headers=h))
    meta = await triton(digits, lambda c: c.get_model_metadata("digits", headers=h))
    assert meta == {
        "name": "digits",
        "versions": ["1.0"],
        "platform": "modelplane",
        "inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 8, 8]}],
        "outputs": [
            {"name": "digit", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        ],
    }


@pytest.mark.parametrize(
    ("binary_in", "binary_out"),
    [(True, True), (False, False), (True, False), (False, True), (True, None)],
    ids=["binary", "json", "binary-in-json-out", "json-in-binary-out", "default-outputs"],
)
async def test_a_batch_of_digits_is_classified(
    digits: Harness, binary_in: bool, binary_out: bool | None
) -> None:
    batch, truth = images(20)
    result = await triton(
        digits,
        lambda c: infer_digits(c, digits, batch, binary_in, binary_out, request_id="r1"),
    )
    predicted = result.as_numpy("digit")
    probs = result.as_numpy("probabilities")
    assert predicted.dtype == np.int64 and predicted.shape == (20,)
    assert probs.dtype == np.float32 and probs.shape == (20, 10)
    assert int((predicted == truth).sum()) >= 19
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-3)
    response = result.get_response()
    assert response["model_name"] == "digits" and response["id"] == "r1"


async def test_infer_by_version_and_the_native_api_still_answers(digits: Harness) -> None:
    batch, truth = images(3)
    result = await triton(
        digits, lambda c: infer_digits(c, digits, batch, True, True, model_version="1.0")
    )
    assert result.as_numpy("digit").tolist() == truth.tolist()
    native = await digits.predict("digits", {"image": batch[0].tolist()})
    assert native.status_code == 200 and native.json()["digit"] == truth[0]


def failure(c: Any, fn: Callable[[Any], Any]) -> InferenceServerException:
    try:
        fn(c)
    except InferenceServerException as exc:
        return exc
    raise AssertionError("the call should have failed")


def infer_one(c: Any, h: dict[str, str], datatype: str, shape: list[int], **kw: Any) -> Any:
    tensor = httpclient.InferInput("image", shape, datatype)
    dtype = np.float64 if datatype == "FP64" else np.float32
    tensor.set_data_from_numpy(np.zeros(shape, dtype=dtype))
    return c.infer(kw.pop("model", "digits"), [tensor], headers=h, **kw)


async def test_errors_come_back_as_tritonclient_exceptions(digits: Harness) -> None:
    h = auth(digits)

    async def fails(fn: Callable[[Any], Any]) -> InferenceServerException:
        return await triton(digits, lambda c: failure(c, fn))

    exc = await fails(lambda c: infer_one(c, h, "FP32", [2, 64]))
    assert exc.status() == "400" and "shape [2, 64]" in exc.message()
    exc = await fails(lambda c: infer_one(c, h, "FP64", [1, 8, 8]))
    assert exc.status() == "400" and "expects FP32" in exc.message()
    exc = await fails(lambda c: infer_one(c, h, "FP32", [1, 8, 8], model="nope"))
    assert exc.status() == "404" and "'nope'" in exc.message()
    exc = await fails(lambda c: infer_one(c, h, "FP32", [1, 8, 8], model_version="9"))
    assert exc.status() == "404" and "version" in exc.message()
    exc = await fails(lambda c: infer_one(c, {}, "FP32", [1, 8, 8]))
    assert exc.status() == "401"
    exc = await fails(lambda c: c.get_model_metadata("digits"))
    assert exc.status() == "401"
    exc = await fails(lambda c: c.get_model_metadata("nope", headers=h))
    assert exc.status() == "404"


async def test_wire_format_headers_and_error_shape(digits: Harness) -> None:
    batch, _ = images(2)
    tensor = httpclient.InferInput("image", [2, 8, 8], "FP32")
    tensor.set_data_from_numpy(batch)
    body, json_size = httpclient.InferenceServerClient.generate_request_body(
        [tensor], outputs=[httpclient.InferRequestedOutput("digit", binary_data=True)]
    )
    r = await digits.http.post(
        "/v2/models/digits/infer",
        content=body,
        headers={"Inference-Header-Content-Length": str(json_size)},
    )
    assert r.status_code == 200, r.text
    length = int(r.headers["inference-header-content-length"])
    assert r.headers["content-type"] == "application/octet-stream"
    assert len(r.content) == length + 2 * 8  # two INT64 after the JSON header
    r = await digits.http.post("/v2/models/digits/infer", content=b"{nope")
    assert r.status_code == 400 and list(r.json()) == ["error"]
    r = await digits.http.get("/v2/models/digits/stats")
    assert r.status_code == 404 and list(r.json()) == ["error"]
    r = await digits.http.post(
        "/v2/models/digits/infer", content=body, headers={"content-encoding": "gzip"}
    )
    assert r.status_code == 415 and list(r.json()) == ["error"]


async def test_serverless_at_zero_is_not_ready_yet_infer_cold_starts(
    harness: Harness, examples: Path
) -> None:
    body = {"name": "digits", "model": {"path": str(examples / "digits")}, "scale": {"min": 0}}
    r = await harness.http.post("/api/v1/deployments", json=body)
    assert r.status_code == 201, r.text
    h = auth(harness)
    assert not await triton(harness, lambda c: c.is_model_ready("digits", headers=h))
    r = await harness.http.get("/v2/models/digits")
    assert r.status_code == 503 and "infer request starts one" in r.json()["error"]
    batch, truth = images(5)
    result = await triton(harness, lambda c: infer_digits(c, harness, batch, True, True))
    assert result.as_numpy("digit").tolist() == truth.tolist()
    assert await triton(harness, lambda c: c.is_model_ready("digits", headers=h))
    meta = await triton(harness, lambda c: c.get_model_metadata("digits", headers=h))
    assert meta["inputs"][0]["name"] == "image"
