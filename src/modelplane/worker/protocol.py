"""The frame protocol between the gateway and its replicas.

Every frame is ``<length:u32><request id:u32><kind:u8>`` followed by ``length`` payload bytes.
Many requests are in flight on one persistent socket at once; the request id pairs each response
with its request. The gateway forwards request bodies as raw bytes: only the worker decodes them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import IntEnum

import orjson

from modelplane.worker.reply import error_body as error_body  # the gateway renders with it

HEADER = struct.Struct("<IIB")
_U16 = struct.Struct("<H")
_U16U16 = struct.Struct("<HH")


class Kind(IntEnum):
    HELLO = 1  # worker -> gateway: JSON {replica_id, deployment, pid, metadata} or {error}
    REQUEST = 2  # gateway -> worker: u16 ctype length, u16 meta length, ctype, meta, body
    RESPONSE = 3  # worker -> gateway: u16 status, u16 content-type length, content type, body
    STOP = 4  # gateway -> worker: finish in-flight requests and exit


def frame(kind: Kind, request_id: int, payload: bytes) -> bytes:
    return HEADER.pack(len(payload), request_id, kind) + payload


def request_frame(
    request_id: int, content_type: bytes, body: bytes | bytearray, meta: bytes = b""
) -> bytes:
    """``meta`` names a protocol front and its parameters (``b"oip\x00..."``); empty: native.
    ``body`` may be the bytearray a request was read into: it is copied once, into the frame."""
    head = HEADER.pack(4 + len(content_type) + len(meta) + len(body), request_id, Kind.REQUEST)
    return b"".join((head, _U16U16.pack(len(content_type), len(meta)), content_type, meta, body))


def response_frame(request_id: int, status: int, content_type: bytes, body: bytes) -> bytes:
    head = HEADER.pack(4 + len(content_type) + len(body), request_id, Kind.RESPONSE)
    return b"".join((head, _U16U16.pack(status, len(content_type)), content_type, body))


def hello_frame(info: dict[str, object]) -> bytes:
    return frame(Kind.HELLO, 0, orjson.dumps(info))


def split_request(payload: bytes) -> tuple[bytes, bytes, bytes]:
    """``(content_type, meta, body)``"""
    n, m = _U16U16.unpack_from(payload, 0)
    return payload[4 : 4 + n], payload[4 + n : 4 + n + m], payload[4 + n + m :]


def split_response(payload: bytes) -> tuple[int, bytes, bytes]:
    status, n = _U16U16.unpack_from(payload, 0)
    return status, payload[4 : 4 + n], payload[4 + n :]


class FrameReader:
    """Incremental decoder: feed bytes, get ``on_frame(kind, request_id, payload)`` calls."""

    __slots__ = ("_buf", "_on_frame")

    def __init__(self, on_frame: Callable[[int, int, bytes], None]) -> None:
        self._buf = bytearray()
        self._on_frame = on_frame

    def feed(self, data: bytes) -> None:
        buf = self._buf
        if buf:
            buf += data
            data = bytes(buf)
            buf.clear()
        # Frames are cut from immutable bytes: one copy each (a slice of the bytearray, then
        # bytes of it, was two), and a read that ends on a frame boundary, the usual case,
        # never touches the buffer.
        offset = 0
        size = len(data)
        hsize = HEADER.size
        unpack = HEADER.unpack_from
        on_frame = self._on_frame
        while size - offset >= hsize:
            length, request_id, kind = unpack(data, offset)
            start = offset + hsize
            end = start + length
            if end > size:
                break
            on_frame(kind, request_id, data[start:end])
            offset = end
        if offset < size:
            buf += data[offset:] if offset else data
