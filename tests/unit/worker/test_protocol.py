from __future__ import annotations

import pytest

from modelplane.errors import InvalidInput, UnsupportedMediaType
from modelplane.model import FileInput, ModelMetadata
from modelplane.worker.inputs import decode_inputs
from modelplane.worker.protocol import (
    FrameReader,
    Kind,
    request_frame,
    response_frame,
    split_request,
    split_response,
)


def test_request_meta_round_trips() -> None:
    seen: list[bytes] = []
    FrameReader(lambda k, r, p: seen.append(p)).feed(
        request_frame(3, b"application/json", b"[1]", meta=b"oip\x00x=1")
    )
    assert split_request(seen[0]) == (b"application/json", b"oip\x00x=1", b"[1]")


def test_frames_survive_any_split() -> None:
    frames = [request_frame(i, b"application/json", b'{"i": %d}' % i) for i in range(1, 50)]
    frames.append(response_frame(7, 503, b"text/plain", b"x" * 100_000))
    stream = b"".join(frames)
    for chunk in (1, 7, 64, 4096, len(stream)):
        seen: list[tuple[int, int, bytes]] = []
        reader = FrameReader(lambda k, r, p, seen=seen: seen.append((k, r, p)))
        for i in range(0, len(stream), chunk):
            reader.feed(stream[i : i + chunk])
        assert len(seen) == 50
        assert seen[0][0] == Kind.REQUEST and split_request(seen[0][2]) == (
            b"application/json",
            b"",
            b'{"i": 1}',
        )
        assert split_response(seen[-1][2]) == (503, b"text/plain", b"x" * 100_000)


MD = ModelMetadata(name="m", accepts=("application/json", "image/png"))


def test_json_inputs() -> None:
    assert decode_inputs(b'{"a": 1}', "application/json", MD) == ({"a": 1}, True)
    assert decode_inputs(b"[1]", "", MD) == ([1], True)
    with pytest.raises(InvalidInput, match="not valid JSON"):
        decode_inputs(b"{", "application/json", MD)
    with pytest.raises(InvalidInput, match="empty"):
        decode_inputs(b"", "application/json", MD)


def test_raw_and_multipart_files() -> None:
    inputs, is_json = decode_inputs(b"PNG", "image/png", MD)
    assert not is_json and inputs["file"] == FileInput("file", "upload", "image/png", b"PNG")
    with pytest.raises(UnsupportedMediaType, match="text/csv"):
        decode_inputs(b"a,b", "text/csv", MD)
    body = (
        b'--XX\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\nPNGDATA\r\n"
        b'--XX\r\nContent-Disposition: form-data; name="k"\r\n\r\n3\r\n--XX--\r\n'
    )
    inputs, _ = decode_inputs(body, "multipart/form-data; boundary=XX", MD)
    assert inputs["image"] == FileInput("image", "a.png", "image/png", b"PNGDATA")
    assert inputs["k"] == 3
    bad_type = body.replace(b"image/png", b"text/html")
    with pytest.raises(UnsupportedMediaType):
        decode_inputs(bad_type, "multipart/form-data; boundary=XX", MD)
    with pytest.raises(InvalidInput, match="boundary"):
        decode_inputs(body, "multipart/form-data", MD)
