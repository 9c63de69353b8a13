"""Fixtures for the HTTP layer tests: servers on 127.0.0.1:0 in the test's loop, a raw client.

The raw client writes exactly the bytes a test gives it, so framing (pipelining, chunking, partial
headers) is under the test's control, and parses responses with httptools' response parser.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httptools
import pytest

from modelplane.gateway.http import Handler, HttpLimits, serve_http

DEADLINE = 3.0
"""Upper bound for anything that should happen "soon" (a response, a close after a timeout)."""


@dataclass
class Response:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    chunks: list[bytes] = field(default_factory=list)
    keep_alive: bool = True


class _Collector:
    """httptools callbacks collecting complete responses in arrival order."""

    def __init__(self) -> None:
        self.done: deque[Response] = deque()
        self.parser = httptools.HttpResponseParser(self)
        self._headers: dict[bytes, bytes] = {}
        self._chunks: list[bytes] = []

    def on_message_begin(self) -> None:
        self._headers = {}
        self._chunks = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._chunks.append(bytes(body))

    def on_message_complete(self) -> None:
        self.done.append(
            Response(
                status=self.parser.get_status_code(),
                headers=self._headers,
                body=b"".join(self._chunks),
                chunks=self._chunks,
                keep_alive=self.parser.should_keep_alive(),
            )
        )


class RawClient:
    """One TCP connection speaking raw bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._collector = _Collector()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, timeout: float = DEADLINE) -> Response:
        """The next complete response on this connection."""
        async with asyncio.timeout(timeout):
            while not self._collector.done:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("connection closed before a complete response")
                self._collector.parser.feed_data(data)
        return self._collector.done.popleft()

    async def closed_by_server(self, timeout: float = DEADLINE) -> bytes:
        """Wait for EOF (or a reset) from the server; return any bytes that came before it."""
        got = bytearray()
        async with asyncio.timeout(timeout):
            while True:
                try:
                    data = await self.reader.read(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                got += data
        return bytes(got)

    def close(self) -> None:
        self.writer.close()


@dataclass
class Servers:
    started: list[asyncio.Server] = field(default_factory=list)
    clients: list[RawClient] = field(default_factory=list)

    async def start(self, handler: Handler, **limits: Any) -> tuple[str, int]:
        server = await serve_http(handler, "127.0.0.1", 0, HttpLimits(**limits))
        self.started.append(server)
        host, port = server.sockets[0].getsockname()[:2]
        return host, port

    async def connect(self, addr: tuple[str, int]) -> RawClient:
        reader, writer = await asyncio.open_connection(*addr)
        client = RawClient(reader, writer)
        self.clients.append(client)
        return client


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    s = Servers()
    yield s
    for client in s.clients:
        client.close()
    for server in s.started:
        server.close()
        await server.wait_closed()
