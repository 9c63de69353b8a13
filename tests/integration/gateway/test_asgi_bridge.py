"""AsgiBridge: an ASGI application (here a tiny Starlette app) served by the lean HTTP layer."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route
from tests.polling import eventually

from modelplane.gateway.asgi import AsgiBridge

pytestmark = pytest.mark.integration


class Probe:
    """Events the app and the test share, to step a streamed response deterministically."""

    def __init__(self) -> None:
        self.go_on = asyncio.Event()
        self.stream_closed = asyncio.Event()
        self.background_ran = asyncio.Event()


def make_app(probe: Probe) -> Starlette:
    async def hello(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "path": request.url.path,
                "query": dict(request.query_params),
                "client": request.client.host if request.client else None,
                "agent": request.headers.get("x-agent"),
            },
            headers={"x-served-by": "bridge"},
        )

    async def upload(request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse({"size": len(body), "sha256": hashlib.sha256(body).hexdigest()})

    async def stepped(request: Request) -> StreamingResponse:
        async def pieces() -> AsyncIterator[bytes]:
            yield b"first;"
            await probe.go_on.wait()  # the test has seen the first piece
            yield b"second;"
            yield b"third"

        return StreamingResponse(pieces(), media_type="text/plain")

    async def endless(request: Request) -> StreamingResponse:
        async def pieces() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"tick\n" * 100
                    await asyncio.sleep(0.01)
            finally:
                probe.stream_closed.set()

        return StreamingResponse(pieces(), media_type="text/plain")

    async def boom(request: Request) -> JSONResponse:
        raise RuntimeError("app bug")

    def fail() -> None:
        probe.background_ran.set()
        raise RuntimeError("background bug")

    async def stream_then_fail(request: Request) -> StreamingResponse:
        async def pieces() -> AsyncIterator[bytes]:
            yield b"streamed"

        return StreamingResponse(pieces(), background=BackgroundTask(fail))

    async def whole_then_fail(request: Request) -> PlainTextResponse:
        return PlainTextResponse("whole", background=BackgroundTask(fail))

    async def slow(request: Request) -> PlainTextResponse:
        await asyncio.sleep(0.1)
        return PlainTextResponse("slow")

    async def fast(request: Request) -> PlainTextResponse:
        return PlainTextResponse("fast")

    return Starlette(
        routes=[
            Route("/hello/{name}", hello),
            Route("/upload", upload, methods=["POST"]),
            Route("/stepped", stepped),
            Route("/endless", endless),
            Route("/boom", boom),
            Route("/stream-then-fail", stream_then_fail),
            Route("/whole-then-fail", whole_then_fail),
            Route("/slow", slow),
            Route("/fast", fast),
        ]
    )


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
async def bridged(servers, probe) -> tuple[str, int]:
    bridge = AsgiBridge(make_app(probe), server=("127.0.0.1", 0))
    return await servers.start(bridge)


@pytest.fixture
async def http(bridged) -> AsyncIterator[httpx.AsyncClient]:
    host, port = bridged
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=5) as client:
        yield client


async def test_json_response_with_path_query_and_headers(http) -> None:
    r = await http.get("/hello/caf%C3%A9", params={"x": "1 2"}, headers={"x-agent": "t"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-served-by"] == "bridge"
    assert r.json() == {
        "path": "/hello/café",
        "query": {"x": "1 2"},
        "client": "127.0.0.1",
        "agent": "t",
    }


async def test_request_body_is_delivered(http) -> None:
    for body in (b"", b"small", bytes(range(256)) * 4096):
        r = await http.post("/upload", content=body)
        assert r.status_code == 200
        assert r.json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


async def test_chunked_request_body_is_delivered(http) -> None:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(20):
            yield bytes([i]) * 1000

    r = await http.post("/upload", content=gen())
    expected = b"".join(bytes([i]) * 1000 for i in range(20))
    assert r.json() == {"size": len(expected), "sha256": hashlib.sha256(expected).hexdigest()}


async def test_streaming_response_is_chunked_and_pieces_arrive_as_sent(http, probe) -> None:
    async with http.stream("GET", "/stepped") as r:
        assert r.status_code == 200
        assert r.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in r.headers
        pieces = r.aiter_raw()
        # the first piece arrives while the app is still blocked before the second
        assert await anext(pieces) == b"first;"
        probe.go_on.set()
        rest = b"".join([p async for p in pieces])
    assert rest == b"second;third"


async def test_streaming_response_framing_on_the_wire(servers, bridged, probe) -> None:
    probe.go_on.set()
    client = await servers.connect(bridged)
    await client.send(b"GET /stepped HTTP/1.1\r\nHost: t\r\n\r\n")
    resp = await client.response()
    assert resp.headers[b"transfer-encoding"] == b"chunked"
    assert resp.chunks == [b"first;", b"second;", b"third"]
    # the connection stays usable after the terminating chunk
    await client.send(b"GET /fast HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await client.response()).body == b"fast"


async def test_unknown_route_is_404_from_the_app(http) -> None:
    r = await http.get("/nowhere")
    assert r.status_code == 404
    r = await http.delete("/upload")
    assert r.status_code == 405


async def test_exception_in_app_becomes_500_and_the_server_keeps_serving(http) -> None:
    r = await http.get("/boom")
    assert r.status_code == 500
    assert (await http.get("/fast")).text == "fast"


async def test_client_leaving_an_endless_stream_stops_the_app(servers, bridged, probe) -> None:
    client = await servers.connect(bridged)
    await client.send(b"GET /endless HTTP/1.1\r\nHost: t\r\n\r\n")
    await client.reader.readuntil(b"\r\n\r\n")
    await client.reader.readexactly(10_000)
    client.writer.transport.abort()
    async with asyncio.timeout(3):
        await probe.stream_closed.wait()


@pytest.mark.parametrize("path", ["/stream-then-fail", "/whole-then-fail"])
async def test_failure_after_a_complete_response_sends_nothing_more(
    servers, bridged, probe, path: str
) -> None:
    """A background task failing after the response: no second response, order intact."""
    client = await servers.connect(bridged)
    await client.send(
        f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
        + b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
        + b"GET /fast HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    bodies = [(await client.response()).body for _ in range(3)]
    assert bodies[1:] == [b"slow", b"fast"]
    assert bodies[0] in (b"streamed", b"whole")
    # The background task runs after its response went out; under load it may trail the others.
    await asyncio.wait_for(probe.background_ran.wait(), 5)
    await client.send(b"GET /fast HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await client.response()).body == b"fast"


async def test_head_through_the_bridge_has_headers_and_no_body(servers, bridged) -> None:
    client = await servers.connect(bridged)
    await client.send(
        b"HEAD /fast HTTP/1.1\r\nHost: t\r\n\r\nGET /fast HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    head = await client.reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"content-length: 4\r\n" in head
    assert (await client.response()).body == b"fast"


# -- raw ASGI apps: misbehaviour the bridge must contain ------------------------------------------


async def _serve_raw(servers, app: Any) -> httpx.AsyncClient:
    host, port = await servers.start(AsgiBridge(app, server=("127.0.0.1", 0)))
    return httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=3)


async def test_raw_app_raising_before_start_gets_500_json(servers) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("early")

    async with await _serve_raw(servers, app) as http:
        r = await http.get("/")
        assert r.status_code == 500
        assert r.json()["error"] == "internal_error"


async def test_raw_app_raising_after_start_gets_500_not_a_hang(servers) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("after start")

    async with await _serve_raw(servers, app) as http:
        r = await http.get("/")
        assert r.status_code == 500


async def test_raw_app_returning_without_a_response_gets_500_not_a_hang(servers) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()

    async with await _serve_raw(servers, app) as http:
        r = await http.get("/")
        assert r.status_code == 500


async def test_raw_app_sees_the_whole_body_then_disconnect(servers) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await receive())
        await send({"type": "http.response.start", "status": 201, "headers": [(b"x-a", b"b")]})
        await send({"type": "http.response.body", "body": orjson.dumps(scope["method"])})
        seen.append(await receive())

    async with await _serve_raw(servers, app) as http:
        r = await http.put("/x", content=b"payload")
        assert (r.status_code, r.headers["x-a"], r.json()) == (201, "b", "PUT")
    await eventually(lambda: len(seen) >= 2, timeout=3, what="the request and the disconnect")
    assert seen == [
        {"type": "http.request", "body": b"payload", "more_body": False},
        {"type": "http.disconnect"},
    ]


async def test_raw_app_raising_mid_stream_leaves_the_body_visibly_truncated(servers) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("mid stream")

    host, port = await servers.start(AsgiBridge(app, server=("127.0.0.1", 0)))
    client = await servers.connect((host, port))
    await client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    wire = await client.closed_by_server()
    assert wire.startswith(b"HTTP/1.1 200")
    assert wire.endswith(b"4\r\npart\r\n")  # no terminating 0-chunk: the client can tell
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=3) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/")
