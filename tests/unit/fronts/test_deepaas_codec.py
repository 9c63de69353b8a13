"""The DEEPaaS codec in the replica: webargs-like argument parsing, DEEPaaS response shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from modelplane.errors import InvalidInput, NotFound
from modelplane.fronts import codec
from modelplane.fronts.deepaas import (
    DeepaasArgumentsError,
    DeepaasBadJson,
    pack_params,
    unpack_params,
)
from modelplane.gateway.deepaas import route
from modelplane.model.contract import LoadedModel
from modelplane.model.loader import load_model

pytest.importorskip("webargs", reason="DEEPaaS modules need webargs")
CODEC = codec(b"deepaas")
BOUNDARY = "xyzzy"


@pytest.fixture
def model(fixture_models: Path) -> LoadedModel:
    m = load_model(fixture_models / "deepaas_files", None, "deepaas")
    m.load()
    return m


def multipart(*parts: tuple[str, str | None, bytes]) -> tuple[str, bytes]:
    chunks = []
    for name, filename, data in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        head = f"--{BOUNDARY}\r\nContent-Disposition: {disp}\r\n"
        if filename:
            head += "Content-Type: text/plain\r\n"
        chunks.append(head.encode() + b"\r\n" + data + b"\r\n")
    body = b"".join(chunks) + f"--{BOUNDARY}--\r\n".encode()
    return f"multipart/form-data; boundary={BOUNDARY}", body


def run(
    model: LoadedModel,
    op: bytes,
    query: bytes = b"",
    ctype: str = "",
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    name: bytes = b"deepaas_files",
) -> tuple[int, bytes, bytes]:
    path = b"/v2/models/" + (name + b"/" if op != b"models" else b"")
    params = pack_params(op, path, name, query, headers or [])
    inputs = CODEC.decode(model, ctype, params, body)
    return CODEC.encode(model, model.call(inputs), params)


def test_params_round_trip_and_skip_credentials() -> None:
    params = pack_params(
        b"predict",
        b"/v2/models/m/predict/",
        b"m",
        b"a=1",
        [(b"accept", b"text/plain"), (b"authorization", b"Bearer x"), (b"x-y", b"z")],
    )
    op, path, name, query, headers = unpack_params(params)
    assert (op, path, name, query) == (b"predict", "/v2/models/m/predict/", "m", b"a=1")
    assert headers == {"accept": ["text/plain"], "x-y": ["z"]}
    with pytest.raises(InvalidInput):
        unpack_params(b"nope\x00\x00\x00")


def test_predict_reads_query_form_and_files(model: LoadedModel) -> None:
    ctype, body = multipart(("upload", "a.txt", b"one\ntwo\n"), ("mode", None, b"lines"))
    status, rtype, out = run(model, b"predict", b"repeat=2&tags=x&tags=y", ctype, body)
    assert (status, rtype) == (200, b"application/json; charset=utf-8")
    doc = orjson.loads(out)
    assert doc["status"] == "OK"
    pred = doc["predictions"]
    assert pred["value"] == 4 and pred["mode"] == "lines" and pred["repeat"] == 2
    assert pred["tags"] == ["x", "y"]
    assert pred["name"] == "upload" and pred["original_filename"] == "a.txt"
    assert pred["content_type"] == "text/plain" and pred["temporary"] is True
    assert pred["warmed"] is True


def test_accept_header_selects_a_non_json_output(model: LoadedModel) -> None:
    ctype, body = multipart(("upload", "a.txt", b"ab"))
    status, rtype, out = run(
        model, b"predict", b"repeat=3", ctype, body, [(b"accept", b"text/plain")]
    )
    assert (status, rtype, out) == (200, b"text/plain", b"6")
    status, rtype, out = run(
        model, b"predict", b"repeat=1&mode=upper", ctype, body, [(b"accept", b"text/csv")]
    )
    assert (status, rtype, out) == (200, b"text/csv", b"name,mode,value\na.txt,upper,AB\n")
    status, rtype, _ = run(model, b"predict", b"repeat=1", ctype, body, [(b"accept", b"*/*")])
    assert rtype == b"application/json; charset=utf-8"


def test_invalid_arguments_answer_like_webargs(model: LoadedModel) -> None:
    with pytest.raises(DeepaasArgumentsError) as info:
        run(model, b"predict", b"repeat=9&mode=zz")
    assert info.value.status == 422
    assert info.value.to_dict() == {
        "upload": ["Missing data for required field."],
        "mode": ["Must be one of: size, upper, lines."],
        "repeat": ["Must be greater than or equal to 1 and less than or equal to 5."],
    }
    ctype, body = multipart(("upload", "a.txt", b"ab"))
    with pytest.raises(DeepaasArgumentsError) as info:
        run(model, b"predict", b"repeat=1", ctype, body, [(b"accept", b"text/html")])
    assert info.value.to_dict() == {
        "accept": ["Must be one of: application/json, text/plain, text/csv."]
    }
    with pytest.raises(DeepaasBadJson) as bad:
        run(model, b"predict", b"", "application/json", b'{"repeat": ')
    assert bad.value.status == 400 and bad.value.to_dict() == {"json": ["Invalid JSON body."]}


def test_metadata_operations(model: LoadedModel) -> None:
    _, _, out = run(model, b"models")
    doc: dict[str, Any] = orjson.loads(out)
    [entry] = doc["models"]
    assert entry["id"] == "files-1" and entry["name"] == "deepaas_files"
    assert entry["links"] == [{"rel": "self", "href": "/v2/models/deepaas_files"}]
    _, _, out = run(model, b"model")
    assert orjson.loads(out)["links"][0]["href"] == "/v2/models/deepaas_files"
    with pytest.raises(NotFound):
        run(model, b"model", name=b"other")
    params = pack_params(b"swagger", b"/deepaas/d/swagger.json", b"", b"", [])
    _, _, out = CODEC.encode(model, model.call(CODEC.decode(model, "", params, b"")), params)
    spec = orjson.loads(out)
    assert spec["swagger"] == "2.0" and spec["basePath"] == "/deepaas/d"
    op = spec["paths"]["/v2/models/deepaas_files/predict/"]["post"]
    by_name = {p["name"]: p for p in op["parameters"]}
    assert by_name["upload"] == {
        "in": "formData",
        "name": "upload",
        "required": True,
        "type": "file",
        "description": "a file to inspect",
    }
    assert by_name["repeat"]["in"] == "query" and by_name["repeat"]["type"] == "integer"
    assert by_name["accept"]["in"] == "header"


def test_a_native_model_is_not_served(examples: Path) -> None:
    native = load_model(examples / "echo")
    params = pack_params(b"models", b"/v2/models/", b"", b"", [])
    with pytest.raises(NotFound, match="not a DEEPaaS module"):
        CODEC.decode(native, "", params, b"")


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        (b"GET", b"/", ("versions", b"", b"")),
        (b"GET", b"", ("versions", b"", b"")),
        (b"GET", b"/v2/", ("v2", b"", b"")),
        (b"GET", b"/v2", ("redirect", b"", b"")),
        (b"GET", b"/v2/models/", ("forward", b"models", b"")),
        (b"GET", b"/v2/models/m/", ("forward", b"model", b"m")),
        (b"GET", b"/v2/models/m", ("redirect", b"", b"")),
        (b"POST", b"/v2/models/m/predict/", ("forward", b"predict", b"m")),
        (b"POST", b"/v2/models/m/predict", ("redirect", b"", b"")),
        (b"GET", b"/v2/models/m/predict/", ("method", b"POST", b"")),
        (b"GET", b"/swagger.json", ("forward", b"swagger", b"")),
        (b"GET", b"/v2/models/m/train/", ("train", b"list", b"m")),
        (b"POST", b"/v2/models/m/train/", ("train", b"start", b"m")),
        (b"GET", b"/v2/models/m/train/ab12", ("train", b"get", b"m/ab12")),
        (b"DELETE", b"/v2/models/m/train/ab12", ("train", b"cancel", b"m/ab12")),
        (b"PUT", b"/v2/models/m/train/", ("method", b"GET, POST", b"")),
    ],
)
def test_routes(method: bytes, path: bytes, expected: tuple[str, bytes, bytes]) -> None:
    assert route(method, path) == expected
