"""HttpConnection without sockets: a fake transport, deadlines checked at chosen times."""

from __future__ import annotations

import asyncio
from typing import Any

import httptools

from modelplane.gateway.http import HttpConnection, HttpLimits, Request, status_line


class FakeTransport:
    def __init__(self) -> None:
        self.out = bytearray()
        self.closed = False
        self.paused = 0
        self.resumed = 0

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.out += data

    def writelines(self, parts: Any) -> None:
        for p in parts:
            self.write(p)

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.paused += 1

    def resume_reading(self) -> None:
        self.resumed += 1

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 4242) if name == "peername" else None


class FakeSweeper:
    def __init__(self) -> None:
        self.conns: set[HttpConnection] = set()

    def add(self, conn: HttpConnection) -> None:
        self.conns.add(conn)

    def discard(self, conn: HttpConnection) -> None:
        self.conns.discard(conn)

    @property
    def count(self) -> int:
        return len(self.conns)


class Held:
    """A handler that keeps requests to answer when the test says."""

    def __init__(self) -> None:
        self.got: list[Request] = []

    def __call__(self, req: Request, conn: HttpConnection) -> None:
        self.got.append(req)


def make(handler: Any, **limits: Any) -> tuple[HttpConnection, FakeTransport, FakeSweeper]:
    sweeper = FakeSweeper()
    conn = HttpConnection(handler, HttpLimits(**limits), sweeper)  # type: ignore[arg-type]
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport, sweeper


def statuses(out: bytes) -> list[int]:
    found: list[int] = []

    class P:
        def on_message_complete(self) -> None:
            found.append(parser.get_status_code())

    parser = httptools.HttpResponseParser(P())
    parser.feed_data(bytes(out))
    return found


GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


async def test_read_deadline_answers_408_only_once_it_has_passed() -> None:
    conn, transport, _ = make(Held(), read_timeout=2.0, keepalive_timeout=10.0)
    t0 = asyncio.get_running_loop().time()
    conn.data_received(b"GET / HTTP/1.1\r\nHost")
    conn.check_deadline(t0 + 1.9)
    assert transport.out == b"" and not transport.closed
    conn.check_deadline(t0 + 2.1)
    assert statuses(transport.out) == [408]
    assert transport.closed and conn.closed


async def test_idle_deadline_closes_silently() -> None:
    conn, transport, _ = make(lambda r, c: c.respond(200, b"{}"), keepalive_timeout=1.0)
    conn.data_received(GET)
    assert statuses(transport.out) == [200]
    sent = len(transport.out)
    t0 = asyncio.get_running_loop().time()
    conn.check_deadline(t0 + 0.9)
    assert not transport.closed
    conn.check_deadline(t0 + 1.1)
    assert transport.closed
    assert len(transport.out) == sent


async def test_a_busy_connection_never_times_out() -> None:
    held = Held()
    conn, transport, _ = make(held, read_timeout=1.0, keepalive_timeout=1.0)
    conn.data_received(GET)
    conn.check_deadline(asyncio.get_running_loop().time() + 100)
    assert not transport.closed
    conn.respond(200, b"late")
    assert statuses(transport.out) == [200]
    assert not transport.closed


async def test_deep_pipeline_pauses_and_resumes_reading() -> None:
    held = Held()
    conn, transport, _ = make(held, max_pipelined=4)
    conn.data_received(GET * 10)
    assert len(held.got) == 1  # one at a time
    assert transport.paused == 1
    for _ in range(10):
        conn.respond(200, b"x")
    assert len(held.got) == 10
    assert transport.resumed == 1
    assert statuses(transport.out) == [200] * 10


async def test_response_after_connection_lost_writes_nothing_and_dispatches_nothing() -> None:
    held = Held()
    conn, transport, sweeper = make(held)
    conn.data_received(GET * 3)
    conn.connection_lost(None)
    assert conn not in sweeper.conns
    conn.respond(200, b"x")
    assert transport.out == b""
    assert len(held.got) == 1


async def test_head_response_has_length_but_no_body() -> None:
    conn, transport, _ = make(lambda r, c: c.respond(200, b"12345"))
    conn.data_received(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n")
    assert transport.out.endswith(b"\r\n\r\n")
    assert b"content-length: 5\r\n" in transport.out


async def test_streamed_response_framing_and_abort() -> None:
    conn, transport, _ = make(Held())
    conn.data_received(GET)
    assert conn.start_stream(200, [(b"content-type", b"text/plain")]) is True
    await conn.write_chunk(b"hello")
    await conn.write_chunk(b"")  # an empty piece must not end the stream
    conn.end_stream()
    assert transport.out.endswith(b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert not transport.closed
    conn.data_received(GET)
    conn.start_stream(200, [])
    await conn.write_chunk(b"part")
    conn.abort_stream()
    assert transport.closed
    assert transport.out.endswith(b"4\r\npart\r\n")


async def test_stream_with_content_length_is_not_chunked() -> None:
    conn, transport, _ = make(Held())
    conn.data_received(GET)
    assert conn.start_stream(200, [(b"content-length", b"3")]) is False
    await conn.write_chunk(b"abc")
    conn.end_stream()
    assert b"content-length: 3\r\n" in transport.out
    assert transport.out.endswith(b"\r\n\r\nabc")
    assert b"transfer-encoding" not in transport.out


def test_status_line_and_request_header() -> None:
    assert status_line(404) == b"HTTP/1.1 404 Not Found\r\n"
    assert status_line(599) == b"HTTP/1.1 599 Unknown\r\n"
    req = Request()
    req.headers = [(b"x-a", b"1"), (b"x-a", b"2")]
    assert req.header(b"x-a") == b"1"
    assert req.header(b"x-b") is None
