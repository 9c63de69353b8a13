"""The data plane's HTTP/1.1 server over real sockets: framing, limits, timeouts, failures."""

from __future__ import annotations

import asyncio
import hashlib

import httpx
import orjson
import pytest

from modelplane.errors import NotFound
from modelplane.gateway.http import HttpConnection, Request

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


class Echo:
    """A handler answering with what it received; remembers requests and connections."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.conns: set[int] = set()

    def __call__(self, req: Request, conn: HttpConnection) -> None:
        self.requests.append(req)
        self.conns.add(id(conn))
        if req.url == b"/boom":
            raise RuntimeError("handler bug")
        if req.url == b"/missing":
            raise NotFound("no such thing")
        conn.respond(200, self.describe(req))

    @staticmethod
    def describe(req: Request) -> bytes:
        return orjson.dumps(
            {
                "method": req.method.decode(),
                "url": req.url.decode(),
                "version": req.http_version,
                "size": len(req.body),
                "sha256": hashlib.sha256(req.body).hexdigest(),
                "headers": {k.decode(): v.decode() for k, v in req.headers},
            }
        )


def get(path: str, *headers: str, version: str = "1.1") -> bytes:
    lines = [f"GET {path} HTTP/{version}", "Host: test", *headers, "", ""]
    return "\r\n".join(lines).encode()


# -- keep-alive and connection management -------------------------------------------------------


async def test_keep_alive_serves_many_requests_on_one_connection(servers) -> None:
    echo = Echo()
    addr = await servers.start(echo)
    client = await servers.connect(addr)
    for i in range(50):
        await client.send(get(f"/r/{i}"))
        resp = await client.response()
        assert resp.status == 200
        assert resp.keep_alive
        assert b"connection" not in resp.headers
        assert orjson.loads(resp.body)["url"] == f"/r/{i}"
    assert len(echo.requests) == 50
    assert len(echo.conns) == 1


async def test_httpx_client_reuses_one_connection(servers) -> None:
    echo = Echo()
    host, port = await servers.start(echo)
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
        for i in range(10):
            r = await http.post("/predict", json={"i": i}, params={"q": "x y"})
            assert r.status_code == 200
            assert r.headers["content-type"] == "application/json"
            assert "date" in r.headers
            got = r.json()
            assert got["method"] == "POST"
            assert got["url"] == "/predict?q=x+y"
            assert got["sha256"] == hashlib.sha256(orjson.dumps({"i": i})).hexdigest()
            assert got["headers"]["content-type"] == "application/json"
    assert len(echo.conns) == 1


async def test_http10_without_keep_alive_closes_after_response(servers) -> None:
    echo = Echo()
    addr = await servers.start(echo)
    client = await servers.connect(addr)
    await client.send(get("/old", version="1.0"))
    resp = await client.response()
    assert resp.status == 200
    assert resp.headers[b"connection"] == b"close"
    assert orjson.loads(resp.body)["version"] == "1.0"
    assert await client.closed_by_server() == b""


async def test_connection_close_is_honoured(servers) -> None:
    echo = Echo()
    addr = await servers.start(echo)
    client = await servers.connect(addr)
    await client.send(get("/bye", "Connection: close"))
    resp = await client.response()
    assert resp.status == 200
    assert resp.headers[b"connection"] == b"close"
    assert await client.closed_by_server() == b""


async def test_connection_close_on_a_later_request_of_a_kept_alive_connection(servers) -> None:
    echo = Echo()
    addr = await servers.start(echo)
    client = await servers.connect(addr)
    await client.send(get("/one"))
    assert (await client.response()).status == 200
    await client.send(get("/two", "Connection: close"))
    resp = await client.response()
    assert resp.headers[b"connection"] == b"close"
    assert await client.closed_by_server() == b""


# -- pipelining ---------------------------------------------------------------------------------


async def test_pipelined_requests_in_one_write_are_answered_in_order(servers) -> None:
    echo = Echo()
    addr = await servers.start(echo)
    client = await servers.connect(addr)
    await client.send(get("/a") + get("/b") + get("/c"))
    urls = [orjson.loads((await client.response()).body)["url"] for _ in range(3)]
    assert urls == ["/a", "/b", "/c"]


async def test_pipelined_async_answers_keep_request_order(servers) -> None:
    """The handler answers later, with the slowest request first: order still holds."""
    delays = {b"/slow": 0.15, b"/fast": 0.0, b"/mid": 0.05}
    started: list[bytes] = []
    loop = asyncio.get_running_loop()

    def later(req: Request, conn: HttpConnection) -> None:
        started.append(req.url)
        body = Echo.describe(req)
        loop.call_later(delays[req.url], conn.respond, 200, body)

    addr = await servers.start(later)
    client = await servers.connect(addr)
    await client.send(get("/slow") + get("/fast") + get("/mid"))
    urls = [orjson.loads((await client.response()).body)["url"] for _ in range(3)]
    assert urls == ["/slow", "/fast", "/mid"]
    assert started == [b"/slow", b"/fast", b"/mid"]
    # and the connection is still usable afterwards
    await client.send(get("/fast"))
    assert orjson.loads((await client.response()).body)["url"] == "/fast"


async def test_deep_pipeline_past_the_limit_pauses_reading_and_loses_nothing(servers) -> None:
    loop = asyncio.get_running_loop()

    def later(req: Request, conn: HttpConnection) -> None:
        loop.call_soon(conn.respond, 200, req.url)

    addr = await servers.start(later, max_pipelined=4)
    client = await servers.connect(addr)
    n = 200
    await client.send(b"".join(get(f"/p/{i}") for i in range(n)))
    bodies = [(await client.response()).body for _ in range(n)]
    assert bodies == [f"/p/{i}".encode() for i in range(n)]


# -- request bodies -----------------------------------------------------------------------------


async def test_chunked_request_body_is_reassembled_exactly(servers) -> None:
    echo = Echo()
    addr = await servers.start(echo)
    client = await servers.connect(addr)
    pieces = [b"hello ", b"", b"\r\n is not a delimiter here ", bytes(range(256)) * 40]
    pieces = [p for p in pieces if p]
    head = b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    await client.send(head)
    for i, piece in enumerate(pieces):
        ext = b";name=value" if i == 1 else b""
        frame = f"{len(piece):X}".encode() + ext + b"\r\n" + piece + b"\r\n"
        # split each frame across writes to exercise partial chunk parsing
        await client.send(frame[:3])
        await client.send(frame[3:])
    await client.send(b"0\r\nX-Trailer: yes\r\n\r\n")
    resp = await client.response()
    assert resp.status == 200
    body = b"".join(pieces)
    got = orjson.loads(resp.body)
    assert got["size"] == len(body)
    assert got["sha256"] == hashlib.sha256(body).hexdigest()
    # the connection is reusable after a chunked body
    await client.send(get("/after"))
    assert orjson.loads((await client.response()).body)["url"] == "/after"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_large_body_at_the_limit_arriving_in_pieces(servers, chunked: bool) -> None:
    echo = Echo()
    addr = await servers.start(echo, max_body=8 * MiB)
    client = await servers.connect(addr)
    body = hashlib.sha256(b"seed").digest() * (8 * MiB // 32)
    assert len(body) == 8 * MiB
    if chunked:
        await client.send(b"POST /big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    else:
        head = f"POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n\r\n"
        await client.send(head.encode())
    step = 100_003  # not a power of two: pieces straddle every internal buffer boundary
    for i in range(0, len(body), step):
        piece = body[i : i + step]
        await client.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
    if chunked:
        await client.send(b"0\r\n\r\n")
    resp = await client.response(timeout=10)
    assert resp.status == 200, resp.body
    got = orjson.loads(resp.body)
    assert got["size"] == len(body)
    assert got["sha256"] == hashlib.sha256(body).hexdigest()


async def test_large_response_body_reaches_a_slow_reader_whole(servers) -> None:
    payload = bytes(range(256)) * (6 * MiB // 256)

    def big(req: Request, conn: HttpConnection) -> None:
        conn.respond(200, payload, b"application/octet-stream")

    host, port = await servers.start(big)
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
        for _ in range(2):
            got = bytearray()
            async with http.stream("GET", "/big") as r:
                assert r.headers["content-length"] == str(len(payload))
                async for piece in r.aiter_raw(4096):
                    got += piece
            assert got == payload


# -- limits -------------------------------------------------------------------------------------


async def test_body_over_limit_by_content_length_is_refused_before_it_is_sent(servers) -> None:
    echo = Echo()
    addr = await servers.start(echo, max_body=1 * MiB)
    client = await servers.connect(addr)
    # only the head: a server that waited for the body would never answer
    await client.send(f"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {MiB + 1}\r\n\r\n".encode())
    resp = await client.response()
    assert resp.status == 413
    err = orjson.loads(resp.body)
    assert err["error"] == "payload_too_large"
    assert resp.headers[b"connection"] == b"close"
    assert await client.closed_by_server() == b""
    assert echo.requests == []


async def test_body_over_limit_sent_eagerly_still_gets_413(servers) -> None:
    """A client that writes head and body at once still reads the 413 before the close."""
    echo = Echo()
    addr = await servers.start(echo, max_body=64 * 1024)
    client = await servers.connect(addr)
    body = b"x" * (64 * 1024 + 1)
    await client.send(
        f"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    )
    resp = await client.response()
    assert resp.status == 413
    assert echo.requests == []


async def test_chunked_body_over_limit_gets_413_and_close(servers) -> None:
    echo = Echo()
    addr = await servers.start(echo, max_body=100_000)
    client = await servers.connect(addr)
    await client.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    piece = b"y" * 30_000
    for _ in range(3):
        await client.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    # 90_000 bytes so far: within the limit, no answer yet
    await client.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    resp = await client.response()
    assert resp.status == 413
    assert orjson.loads(resp.body)["error"] == "payload_too_large"
    await client.closed_by_server()
    assert echo.requests == []


async def test_headers_over_limit_get_431(servers) -> None:
    echo = Echo()
    addr = await servers.start(echo, max_headers=2048)
    client = await servers.connect(addr)
    await client.send(get("/h", *(f"X-Filler-{i}: {'v' * 100}" for i in range(30))))
    resp = await client.response()
    assert resp.status == 431
    assert orjson.loads(resp.body)["error"] == "request_header_fields_too_large"
    await client.closed_by_server()
    assert echo.requests == []


async def test_headers_within_limit_pass(servers) -> None:
    echo = Echo()
    addr = await servers.start(echo, max_headers=2048)
    client = await servers.connect(addr)
    await client.send(get("/h", *(f"X-Filler-{i}: {'v' * 100}" for i in range(10))))
    resp = await client.response()
    assert resp.status == 200
    assert orjson.loads(resp.body)["headers"]["x-filler-9"] == "v" * 100


async def test_url_over_limit_gets_414(servers) -> None:
    echo = Echo()
    addr = await servers.start(echo, max_url=256)
    client = await servers.connect(addr)
    await client.send(get("/" + "u" * 300))
    resp = await client.response()
    assert resp.status == 414
    assert orjson.loads(resp.body)["error"] == "request_uri_too_long"
    await client.closed_by_server()
    assert echo.requests == []


@pytest.mark.parametrize(
    "raw",
    [
        b"HELLO\r\n\r\n",
        b"GET / HTTX/1.1\r\nHost: t\r\n\r\n",
        b"GET /\x01 HTTP/1.1\r\nHost: t\r\n\r\n",
        # request smuggling shape: both framings at once
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
    ],
    ids=["no-request-line", "bad-version", "control-char-in-url", "cl-and-te"],
)
async def test_malformed_request_gets_400_and_close(servers, raw: bytes) -> None:
    echo = Echo()
    addr = await servers.start(echo)
    client = await servers.connect(addr)
    await client.send(raw)
    resp = await client.response()
    assert resp.status == 400
    assert resp.headers[b"connection"] == b"close"
    assert orjson.loads(resp.body)["error"] == "bad_request"
    await client.closed_by_server()
    assert echo.requests == []


@pytest.mark.parametrize("later", [False, True], ids=["sync-answer", "async-answer"])
async def test_upgrade_request_is_answered_as_plain_http_then_closed(servers, later) -> None:
    """Upgrade is ignored (RFC 9110 7.8): exactly one response, then the connection closes."""
    loop = asyncio.get_running_loop()
    echo = Echo()

    def handler(req: Request, conn: HttpConnection) -> None:
        if later:
            loop.call_soon(echo, req, conn)
        else:
            echo(req, conn)

    addr = await servers.start(handler)
    client = await servers.connect(addr)
    await client.send(get("/ws", "Connection: Upgrade", "Upgrade: websocket"))
    resp = await client.response()
    assert resp.status == 200
    assert orjson.loads(resp.body)["url"] == "/ws"
    if later:
        assert resp.headers[b"connection"] == b"close"
    assert await client.closed_by_server() == b""  # and nothing else: no second response
    assert len(echo.requests) == 1


# -- timeouts -----------------------------------------------------------------------------------


async def test_idle_keep_alive_connection_is_closed_after_the_timeout(servers) -> None:
    echo = Echo()
    addr = await servers.start(echo, keepalive_timeout=0.3, read_timeout=5)
    client = await servers.connect(addr)
    await client.send(get("/once"))
    assert (await client.response()).status == 200
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await client.closed_by_server() == b""  # silently: no response for an idle close
    assert loop.time() - t0 >= 0.2


async def test_connection_that_never_sends_is_closed_after_the_keep_alive_timeout(servers) -> None:
    addr = await servers.start(Echo(), keepalive_timeout=0.3, read_timeout=5)
    client = await servers.connect(addr)
    assert await client.closed_by_server() == b""


async def test_activity_defers_the_idle_timeout(servers) -> None:
    """Requests every 0.1 s on a 0.3 s idle timeout: the connection outlives 3 timeouts."""
    addr = await servers.start(Echo(), keepalive_timeout=0.3, read_timeout=5)
    client = await servers.connect(addr)
    for i in range(10):
        await client.send(get(f"/{i}"))
        assert (await client.response()).status == 200
        await asyncio.sleep(0.1)  # pacing the client, not synchronisation


async def test_slow_client_with_half_the_headers_gets_408_then_close(servers) -> None:
    echo = Echo()
    addr = await servers.start(echo, keepalive_timeout=10, read_timeout=0.3)
    client = await servers.connect(addr)
    await client.send(b"GET /slow HTTP/1.1\r\nHost: t\r\nX-Half: ")
    resp = await client.response()
    assert resp.status == 408
    assert resp.headers[b"connection"] == b"close"
    assert orjson.loads(resp.body)["error"] == "request_timeout"
    assert await client.closed_by_server() == b""
    assert echo.requests == []


async def test_trickling_client_still_hits_the_read_timeout(servers) -> None:
    """Bytes arriving now and then do not extend the deadline of the request."""
    addr = await servers.start(Echo(), keepalive_timeout=10, read_timeout=0.3)
    client = await servers.connect(addr)
    await client.send(b"GET /trickle HTTP/1.1\r\n")

    async def trickle() -> None:
        for i in range(100):
            await client.send(f"X-{i}: v\r\n".encode())
            await asyncio.sleep(0.05)

    feeder = asyncio.create_task(trickle())
    try:
        resp = await client.response()
    finally:
        feeder.cancel()
    assert resp.status == 408


async def test_slow_body_gets_408(servers) -> None:
    echo = Echo()
    addr = await servers.start(echo, keepalive_timeout=10, read_timeout=0.3)
    client = await servers.connect(addr)
    await client.send(b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345")
    resp = await client.response()
    assert resp.status == 408
    await client.closed_by_server()
    assert echo.requests == []


async def test_slow_handler_is_not_cut_off_by_the_read_or_idle_timeout(servers) -> None:
    """Timeouts guard the client, never the time our handler takes."""
    loop = asyncio.get_running_loop()

    def slow(req: Request, conn: HttpConnection) -> None:
        loop.call_later(0.8, conn.respond, 200, b"{}")

    addr = await servers.start(slow, keepalive_timeout=0.2, read_timeout=0.2)
    client = await servers.connect(addr)
    await client.send(get("/slow"))
    assert (await client.response()).status == 200


async def test_half_pipelined_request_during_a_slow_answer_gets_408(servers) -> None:
    loop = asyncio.get_running_loop()

    def slow(req: Request, conn: HttpConnection) -> None:
        loop.call_later(0.1, conn.respond, 200, req.url)

    addr = await servers.start(slow, keepalive_timeout=10, read_timeout=0.3)
    client = await servers.connect(addr)
    await client.send(get("/first") + b"GET /second HTTP/1.1\r\nHost")
    first = await client.response()
    assert (first.status, first.body) == (200, b"/first")
    assert (await client.response()).status == 408


# -- failures -----------------------------------------------------------------------------------


async def test_client_leaving_mid_stream_does_not_hurt_other_clients(servers) -> None:
    stopped = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()

    async def pump(conn: HttpConnection) -> None:
        conn.start_stream(200, [(b"content-type", b"application/octet-stream")])
        while not conn.closed:
            await conn.write_chunk(b"z" * 65536)
        conn.end_stream()
        stopped.set()

    def handler(req: Request, conn: HttpConnection) -> None:
        if req.url == b"/endless":
            task = asyncio.get_running_loop().create_task(pump(conn))
            tasks.add(task)
        else:
            conn.respond(200, b'{"ok":true}')

    addr = await servers.start(handler)
    leaver = await servers.connect(addr)
    await leaver.send(get("/endless"))
    head = await leaver.reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding: chunked" in head
    await leaver.reader.readexactly(100_000)
    leaver.writer.transport.abort()  # vanish without a goodbye (RST)
    async with asyncio.timeout(3):
        await stopped.wait()

    other = await servers.connect(addr)
    for _ in range(3):
        await other.send(get("/ok"))
        resp = await other.response()
        assert (resp.status, resp.body) == (200, b'{"ok":true}')
    await asyncio.gather(*tasks)


async def test_client_leaving_before_a_late_answer_does_not_hurt_the_server(servers) -> None:
    loop = asyncio.get_running_loop()
    answered = asyncio.Event()

    def late(req: Request, conn: HttpConnection) -> None:
        def answer() -> None:
            conn.respond(200, b"late")
            answered.set()

        loop.call_later(0.2 if req.url == b"/late" else 0, answer)

    addr = await servers.start(late)
    leaver = await servers.connect(addr)
    await leaver.send(get("/late") + get("/late"))
    leaver.writer.transport.abort()
    async with asyncio.timeout(3):
        await answered.wait()
    other = await servers.connect(addr)
    await other.send(get("/now"))
    assert (await other.response()).body == b"late"


async def test_handler_exception_becomes_500_json_and_the_server_keeps_serving(servers) -> None:
    echo = Echo()
    addr = await servers.start(echo)
    client = await servers.connect(addr)
    await client.send(get("/boom"))
    resp = await client.response()
    assert resp.status == 500
    assert resp.headers[b"content-type"] == b"application/json"
    err = orjson.loads(resp.body)
    assert err["error"] == "internal_error"
    assert "handler bug" in err["message"]
    # same connection, then a new one
    await client.send(get("/fine"))
    assert (await client.response()).status == 200
    other = await servers.connect(addr)
    await other.send(get("/fine"))
    assert (await other.response()).status == 200


async def test_handler_raising_a_modelplane_error_maps_to_its_status(servers) -> None:
    addr = await servers.start(Echo())
    client = await servers.connect(addr)
    await client.send(get("/missing") + get("/fine"))
    resp = await client.response()
    assert resp.status == 404
    assert orjson.loads(resp.body) == {"error": "not_found", "message": "no such thing"}
    assert (await client.response()).status == 200


async def test_head_response_carries_no_body(servers) -> None:
    """A HEAD answer keeps content-length but sends no body, so the next response parses."""
    addr = await servers.start(Echo())
    client = await servers.connect(addr)
    await client.send(b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n" + get("/next"))
    head = await client.reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"content-length: " in head
    assert not head.endswith(b"content-length: 0\r\n\r\n")
    # what follows must be the next response, not the HEAD response's body
    nxt = await client.response()
    assert orjson.loads(nxt.body)["url"] == "/next"


async def test_expect_100_continue_is_answered_before_the_body(servers) -> None:  # type: ignore[no-untyped-def]
    """curl sends `Expect: 100-continue` for bodies over 1 KiB and waits for the interim 100."""
    import asyncio

    calls: list[bytes] = []

    def handler(req, conn) -> None:  # type: ignore[no-untyped-def]
        calls.append(bytes(req.body))
        conn.respond(200, bytes(req.body))

    host, port = await servers.start(handler)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    )
    await writer.drain()
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    writer.write(b"hello")
    await writer.drain()
    final = await asyncio.wait_for(reader.readuntil(b"hello"), 3)
    assert final.startswith(b"HTTP/1.1 200") and calls == [b"hello"]
    writer.close()
