"""A lean HTTP/1.1 server on httptools, for the prediction hot path.

Why not uvicorn + Starlette for predictions: on this 2-core machine a Starlette gateway reached
1.2x a bare Starlette model server, a raw httptools protocol 3.2x (see DESIGN.md). So the data
plane parses HTTP with httptools (a maintained binding of llhttp, Node's parser: we never parse
HTTP by hand) and answers predictions from callbacks, with no task per request. Everything that is
not a hot path is handed to an ASGI application (the FastAPI control plane) through
:mod:`modelplane.gateway.asgi`, so users still see one address.

What this layer guarantees, each tested in tests/integration/gateway: keep-alive and pipelining
(responses in request order), chunked request bodies, limits on the URL, the header block and the
body (414/431/413, before buffering an oversized body), an idle keep-alive timeout, a read timeout
for slow clients (408), and back-pressure on both directions.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus

import httptools

from modelplane.errors import ModelplaneError, PayloadTooLarge
from modelplane.worker.protocol import error_body


@dataclass(frozen=True)
class HttpLimits:
    max_url: int = 8 * 1024
    max_headers: int = 64 * 1024
    max_body: int = 16 * 1024 * 1024
    keepalive_timeout: float = 5.0
    read_timeout: float = 30.0
    max_pipelined: int = 64
    max_connections: int = 10_000
    """Open connections at once; one more is answered 503 and closed at once, so a flood of idle
    sockets cannot exhaust file descriptors (idle ones close after ``keepalive_timeout``)."""


class Request:
    """One parsed request. Header names are lowercased bytes."""

    __slots__ = (
        "authorization",
        "body",
        "content_type",
        "headers",
        "http_version",
        "keep_alive",
        "method",
        "url",
    )

    def __init__(self) -> None:
        self.url = b""
        self.method = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: bytes | bytearray = b""
        """The bytes of a body read in one piece (the usual case, no copy); a bytearray when
        it came in several."""
        self.keep_alive = True
        self.http_version = "1.1"
        self.content_type = b""
        self.authorization = b""

    def header(self, name: bytes) -> bytes | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


Handler = Callable[[Request, "HttpConnection"], None]
"""Called once per complete request; it must call ``conn.respond`` (now or later) exactly once,
or ``conn.start_stream``/``write_chunk``/``end_stream`` for a streamed response."""

_STATUS_LINES = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode("latin-1") for s in HTTPStatus
}
_date_cache: list[object] = [0, b""]


def _date_header() -> bytes:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = b"date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
    return _date_cache[1]  # type: ignore[return-value]


_HEAD = b"%scontent-type: %s\r\ncontent-length: %d\r\n%s%s%s\r\n%s"
"""Status line, content type, length, date, extra headers, connection, then the body."""


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = f"HTTP/1.1 {status} Unknown\r\n".encode("latin-1")
    return line


class HttpConnection(asyncio.Protocol):
    __slots__ = (
        "_busy",
        "_can_write",
        "_closed",
        "_current",
        "_deadline",
        "_expect",
        "_handler",
        "_header_bytes",
        "_length",
        "_limits",
        "_loop",
        "_parser",
        "_pending",
        "_reading_paused",
        "_responding_head",
        "_responding_keep_alive",
        "_streaming",
        "_sweeper",
        "_too_large",
        "peer",
        "transport",
    )

    def __init__(self, handler: Handler, limits: HttpLimits, sweeper: Sweeper) -> None:
        self._handler = handler
        self._sweeper = sweeper
        self._limits = limits
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._current: Request | None = None
        self._pending: deque[Request] = deque()
        self._busy = False
        self._closed = False
        self._header_bytes = 0
        self._length: bytes | None = None
        self._expect: bytes | None = None
        self._too_large = False
        self._deadline = 0.0
        self._reading_paused = False
        self._streaming = False
        self._responding_keep_alive = True
        self._responding_head = False
        self._can_write = asyncio.Event()
        self._can_write.set()
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = peer if isinstance(peer, tuple) else None
        if self._sweeper.count >= self._limits.max_connections:
            self._fail(
                503,
                f"the server has {self._limits.max_connections} connections open; retry shortly",
            )
            return
        self._sweeper.add(self)
        self._arm(self._limits.keepalive_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._sweeper.discard(self)
        self._can_write.set()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # llhttp stops after a request asking for an upgrade, once that request is complete
            # and dispatched. Answer it as plain HTTP (RFC 9110 7.8 lets a server ignore Upgrade),
            # then close: the parser cannot go on. (A 400 here was a second response.)
            if self._pending:
                self._pending[-1].keep_alive = False
            elif self._busy:
                self._responding_keep_alive = False
            elif not self._closed:
                assert self.transport is not None
                self._closed = True
                self.transport.close()
        except httptools.HttpParserError as exc:
            if not self._too_large:
                self._fail(400, f"malformed HTTP request: {exc}")

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # -- httptools callbacks ------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._current = Request()
        self._header_bytes = 0
        self._length = self._expect = None
        if not self._busy and not self._pending:
            self._arm(self._limits.read_timeout)

    def on_url(self, url: bytes) -> None:
        req = self._current
        assert req is not None
        req.url += url
        if len(req.url) > self._limits.max_url:
            self._fail(414, f"URL longer than {self._limits.max_url} bytes")
            raise httptools.HttpParserError("URL too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        req = self._current
        assert req is not None
        size = self._header_bytes + len(name) + len(value) + 4
        self._header_bytes = size
        if size > self._limits.max_headers:
            self._fail(431, f"request headers larger than {self._limits.max_headers} bytes")
            raise httptools.HttpParserError("headers too large")
        name = name.lower()
        # the few headers this layer reads are picked up here, in the one pass over them
        if name == b"content-type":
            req.content_type = value
        elif name == b"authorization":
            req.authorization = value
        elif name == b"content-length":
            if self._length is None:  # the first one counts
                self._length = value
        elif name == b"expect" and self._expect is None:
            self._expect = value
        req.headers.append((name, value))

    def on_headers_complete(self) -> None:
        req = self._current
        assert req is not None
        parser = self._parser
        req.method = parser.get_method()
        req.keep_alive = parser.should_keep_alive()
        req.http_version = parser.get_http_version()
        length = self._length
        if length is not None and length.isdigit() and int(length) > self._limits.max_body:
            self._reject_body(int(length))
            raise httptools.HttpParserError("body too large")
        expect = self._expect
        if expect is not None and expect.lower() == b"100-continue" and req.http_version == "1.1":
            # curl and others wait for this before sending a body over 1 KiB.
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        req = self._current
        assert req is not None
        have = req.body
        if not have:
            req.body = have = body
        elif isinstance(have, bytearray):
            have += body
        else:
            req.body = have = bytearray(have)
            have += body
        if len(have) > self._limits.max_body:
            self._reject_body(len(have))
            raise httptools.HttpParserError("body too large")

    def on_message_complete(self) -> None:
        req = self._current
        assert req is not None
        self._current = None
        if self._busy:
            self._pending.append(req)
            if len(self._pending) >= self._limits.max_pipelined and not self._reading_paused:
                assert self.transport is not None
                self.transport.pause_reading()
                self._reading_paused = True
        else:
            self._dispatch(req)

    # -- responding ---------------------------------------------------------------------------
    def _dispatch(self, req: Request) -> None:
        self._busy = True
        self._deadline = 0.0  # _cancel_timer, inline on the hot path
        self._responding_keep_alive = req.keep_alive
        self._responding_head = req.method == b"HEAD"
        try:
            self._handler(req, self)
        except ModelplaneError as exc:
            self.respond_error(exc)
        except Exception as exc:  # a bug of ours must not take the connection's peers down
            self.respond_error(ModelplaneError(f"internal error: {type(exc).__name__}: {exc}"))

    def respond(
        self,
        status: int,
        body: bytes,
        content_type: bytes = b"application/json",
        extra_headers: bytes = b"",
    ) -> None:
        """Send a complete response to the request being handled."""
        if self._closed:
            self._done()
            return
        # One %-format builds the head (and a small body with it): half the CPU of joining
        # the pieces, on every response.
        close = b"" if self._responding_keep_alive else b"connection: close\r\n"
        assert self.transport is not None
        size = len(body)
        inline = size < 65536 and not self._responding_head
        line = status_line(status)
        head = _HEAD % (
            line,
            content_type,
            size,
            _date_header(),
            extra_headers,
            close,
            body if inline else b"",
        )
        if inline or self._responding_head:  # HEAD: content-length of a GET's body, no body
            self.transport.write(head)
        else:
            self.transport.writelines((head, body))
        self._done()

    def respond_error(self, err: ModelplaneError) -> None:
        retry = err.retry_after_header
        extra = b"" if retry is None else b"retry-after: " + retry.encode() + b"\r\n"
        if err.status == 401:
            extra += b"www-authenticate: Bearer\r\n"
        self.respond(err.status, error_body(err), extra_headers=extra)

    def start_stream(self, status: int, headers: list[tuple[bytes, bytes]]) -> bool:
        """Begin a response whose body follows in pieces. Returns True if chunked."""
        has_length = any(k.lower() == b"content-length" for k, _ in headers)
        lines = [status_line(status)]
        lines += [k + b": " + v + b"\r\n" for k, v in headers]
        lines.append(_date_header())
        if not has_length:
            lines.append(b"transfer-encoding: chunked\r\n")
        if not self._responding_keep_alive:
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        self._streaming = not has_length
        if not self._closed:
            assert self.transport is not None
            self.transport.write(b"".join(lines))
        return self._streaming

    async def write_chunk(self, data: bytes) -> None:
        if self._closed or not data or self._responding_head:
            return
        assert self.transport is not None
        if self._streaming:
            self.transport.writelines((f"{len(data):x}\r\n".encode(), data, b"\r\n"))
        else:
            self.transport.write(data)
        await self._can_write.wait()

    def end_stream(self) -> None:
        if not self._closed and self._streaming and not self._responding_head:
            assert self.transport is not None
            self.transport.write(b"0\r\n\r\n")
        self._streaming = False
        self._done()

    def abort_stream(self) -> None:
        """End a streamed response that cannot complete: close without the last chunk, so the
        client sees a truncated body rather than a complete one."""
        self._streaming = False
        if not self._closed:
            assert self.transport is not None
            self._closed = True
            self.transport.close()
        self._done()

    @property
    def closed(self) -> bool:
        return self._closed

    def _done(self) -> None:
        self._busy = False
        if self._closed:
            return
        assert self.transport is not None
        if not self._responding_keep_alive:
            self.transport.close()
            self._closed = True
            return
        if self._pending:
            req = self._pending.popleft()
            if self._reading_paused and len(self._pending) < self._limits.max_pipelined // 2:
                self.transport.resume_reading()
                self._reading_paused = False
            self._dispatch(req)
        elif self._current is not None:
            self._arm(self._limits.read_timeout)
        else:  # _arm, inline on the hot path
            self._deadline = self._loop.time() + self._limits.keepalive_timeout

    # -- failures and timers ------------------------------------------------------------------
    def _reject_body(self, size: int) -> None:
        self._too_large = True
        err = PayloadTooLarge(
            f"request body of {size} bytes is over the limit of {self._limits.max_body} bytes",
            hint="send a smaller body, or raise the platform's --max-body",
            limit=self._limits.max_body,
        )
        self._fail(err.status, err.message, err)

    def _fail(self, status: int, message: str, err: ModelplaneError | None = None) -> None:
        """Answer a request we cannot parse or accept, then close: the stream is unusable."""
        if self._closed:
            return
        if err is None:
            err = ModelplaneError(message)
            err.status = status  # type: ignore[misc]
            err.code = HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")  # type: ignore[misc]
        self._closed = True
        self._cancel_timer()
        assert self.transport is not None
        body = error_body(err)
        self.transport.write(
            status_line(status)
            + b"content-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\nconnection: close\r\n\r\n"
            + body
        )
        self.transport.close()

    def _arm(self, seconds: float) -> None:
        # A deadline, not a timer: one sweep per server checks every connection, which costs
        # far less than creating and cancelling a timer for every request.
        self._deadline = self._loop.time() + seconds

    def _cancel_timer(self) -> None:
        self._deadline = 0.0

    def check_deadline(self, now: float) -> None:
        if self._deadline and now >= self._deadline and not self._closed and not self._busy:
            self._deadline = 0.0
            self._on_timeout()

    def _on_timeout(self) -> None:
        if self._current is not None:
            self._fail(408, f"request not received within {self._limits.read_timeout} s")
        else:
            assert self.transport is not None
            self._closed = True
            self.transport.close()


class Sweeper:
    """Enforces the idle and read timeouts of every connection of one server."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self._conns: set[HttpConnection] = set()
        self._handle: asyncio.TimerHandle | None = None

    def add(self, conn: HttpConnection) -> None:
        self._conns.add(conn)
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self.interval, self._sweep)

    def discard(self, conn: HttpConnection) -> None:
        self._conns.discard(conn)

    @property
    def count(self) -> int:
        return len(self._conns)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for conn in list(self._conns):
            conn.check_deadline(now)
        self._handle = loop.call_later(self.interval, self._sweep) if self._conns else None


async def serve_http(
    handler: Handler,
    host: str,
    port: int,
    limits: HttpLimits | None = None,
    *,
    sock: socket.socket | None = None,
) -> asyncio.Server:
    """Listen on ``host:port`` (or an already bound socket) and serve ``handler``."""
    loop = asyncio.get_running_loop()
    lim = limits or HttpLimits()
    sweeper = Sweeper(min(0.25, lim.keepalive_timeout / 4, lim.read_timeout / 4))
    if sock is not None:
        return await loop.create_server(
            lambda: HttpConnection(handler, lim, sweeper),
            sock=sock,
            backlog=2048,
        )
    return await loop.create_server(
        lambda: HttpConnection(handler, lim, sweeper),
        host,
        port,
        backlog=2048,
        reuse_address=True,
    )
