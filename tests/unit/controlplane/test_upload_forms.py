"""Job uploads are parsed as they stream in: files in order with their own content types, the
``prefix`` field, and a precise 400/413 for bodies that are malformed or over a limit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from modelplane.controlplane import forms
from modelplane.controlplane.forms import read_upload
from modelplane.errors import InvalidInput, PayloadTooLarge


def encoded(files: list[tuple[str, tuple[str, bytes, str]]], data: dict[str, str] | None = None):
    """A body as httpx (a real client) encodes it."""
    request = httpx.Request("POST", "http://x/", files=files, data=data)
    return request.headers["content-type"], request.read()


async def chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


@pytest.mark.parametrize("size", [1, 7, 1 << 20])
async def test_files_and_the_prefix_field_in_order_whatever_the_chunking(size: int) -> None:
    ctype, body = encoded(
        [
            ("files", ("a.json", b'{"n": 1}', "application/json")),
            ("files", ("b.txt", b"caf\xc3\xa9\r\n--not a boundary", "text/plain; charset=utf-8")),
            ("other", ("c.bin", b"\x00\xff" * 1000, "application/octet-stream")),
        ],
        data={"prefix": "run-1/"},
    )
    upload = await read_upload(ctype, chunks(body, size))
    assert upload.fields == {"prefix": "run-1/"}
    assert upload.files == [
        ("a.json", b'{"n": 1}', "application/json"),
        ("b.txt", b"caf\xc3\xa9\r\n--not a boundary", "text/plain; charset=utf-8"),
        ("c.bin", b"\x00\xff" * 1000, "application/octet-stream"),
    ]


async def test_browser_style_parts_quoted_names_and_an_empty_filename() -> None:
    # As browsers send it: CRLF lines, a quoted filename with an escaped quote, a part without
    # a Content-Type, and a file input left empty (filename="").
    body = (
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="files"; filename="my \\"best\\" run.json"\r\n'
        b"Content-Type: application/json\r\n\r\n"
        b"{}\r\n"
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="files"; filename="raw.dat"\r\n\r\n'
        b"raw\r\n"
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="files"; filename=""\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
        b"\r\n"
        b"--XyZ--\r\n"
    )
    upload = await read_upload("multipart/form-data; boundary=XyZ", chunks(body, 5))
    assert upload.files == [
        ('my "best" run.json', b"{}", "application/json"),
        ("raw.dat", b"raw", "application/octet-stream"),
        ("upload", b"", "application/octet-stream"),
    ]


@pytest.mark.parametrize(
    ("ctype", "message"),
    [
        ("application/json", "send the files as multipart/form-data"),
        ("multipart/form-data", "without a boundary"),
        ("Multipart/Form-Data; charset=utf-8", "without a boundary"),
    ],
)
async def test_a_body_that_is_no_multipart_upload_is_a_400(ctype: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        await read_upload(ctype, chunks(b"{}", 10))


@pytest.mark.parametrize(
    "cut",
    [
        lambda body: body[:-9],  # the closing boundary is missing
        lambda body: body.replace(b"\r\n\r\n", b"\r\n", 1),  # headers never end
        lambda body: b"",  # nothing at all
    ],
)
async def test_a_truncated_or_garbled_body_is_a_400(cut) -> None:  # type: ignore[no-untyped-def]
    ctype, body = encoded([("files", ("a.json", b"{}", "application/json"))])
    with pytest.raises(InvalidInput, match="malformed multipart body"):
        await read_upload(ctype, chunks(cut(body), 64))


async def test_more_files_than_the_limit_is_a_413(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forms, "MAX_FILES", 3)
    ctype, body = encoded([("files", (f"{i}.json", b"{}", "application/json")) for i in range(4)])
    with pytest.raises(PayloadTooLarge, match="more than 3 files"):
        await read_upload(ctype, chunks(body, 1 << 20))
    ctype, body = encoded([("files", (f"{i}.json", b"{}", "application/json")) for i in range(3)])
    assert len((await read_upload(ctype, chunks(body, 1 << 20))).files) == 3


async def test_an_oversized_or_undecodable_field_is_refused() -> None:
    ctype, body = encoded([("files", ("a", b"x", "text/plain"))], {"prefix": "p" * 70_000})
    with pytest.raises(PayloadTooLarge, match="'prefix' is over"):
        await read_upload(ctype, chunks(body, 4096))
    body = b'--b\r\nContent-Disposition: form-data; name="prefix"\r\n\r\n\xff\xfe\r\n--b--\r\n'
    with pytest.raises(InvalidInput, match="'prefix' is not UTF-8"):
        await read_upload("multipart/form-data; boundary=b", chunks(body, 100))
