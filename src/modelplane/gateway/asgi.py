"""Hand a request that is not on a hot path to an ASGI application (the FastAPI control plane).

The HTTP layer has already read and bounded the body, so ``receive`` returns it in one message.
Responses may be complete (``content-length``) or streamed (chunked transfer encoding).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

from modelplane.errors import ModelplaneError
from modelplane.gateway.http import HttpConnection, Request

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


class AsgiBridge:
    def __init__(self, app: ASGIApp, server: tuple[str, int], root_path: str = "") -> None:
        self.app = app
        self.server = server
        self.root_path = root_path
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, req: Request, conn: HttpConnection) -> None:
        task = asyncio.get_running_loop().create_task(self._run(req, conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, req: Request, conn: HttpConnection) -> None:
        raw_path, _, query = bytes(req.url).partition(b"?")
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": req.http_version,
            "method": req.method.decode("latin-1"),
            "scheme": "http",
            "path": unquote(raw_path.decode("latin-1")),
            "raw_path": raw_path,
            "query_string": query,
            "root_path": self.root_path,
            "headers": req.headers,
            "client": conn.peer,
            "server": self.server,
        }
        body_sent = False
        disconnected = asyncio.Event()
        state: dict[str, Any] = {
            "started": False,
            "streamed": False,
            "done": False,
            "status": 500,
            "headers": [],
        }

        async def receive() -> Message:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": bytes(req.body), "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if state["done"]:  # the response is complete: nothing more may reach the wire
                return
            kind = message["type"]
            if kind == "http.response.start":
                state["started"] = True
                state["status"] = message["status"]
                state["headers"] = [
                    (bytes(k).lower(), bytes(v)) for k, v in message.get("headers", [])
                ]
            elif kind == "http.response.body":
                body = message.get("body", b"")
                more = message.get("more_body", False)
                if not state["streamed"] and not more:
                    state["done"] = True
                    _respond_whole(conn, state["status"], state["headers"], body)
                    disconnected.set()
                    return
                if not state["streamed"]:
                    state["streamed"] = True
                    conn.start_stream(state["status"], state["headers"])
                await conn.write_chunk(body)
                if conn.closed:  # the client left: tell the app, whose receive() is waiting
                    disconnected.set()
                if not more:
                    state["done"] = True
                    conn.end_stream()
                    disconnected.set()

        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            log.exception("exception in ASGI application: %s %s", scope["method"], scope["path"])
            self._finish(conn, state, f"internal error: {type(exc).__name__}: {exc}")
        else:
            self._finish(conn, state, "the ASGI application returned without a response")
        finally:
            disconnected.set()

    @staticmethod
    def _finish(conn: HttpConnection, state: dict[str, Any], message: str) -> None:
        """Complete a response the app left unfinished, exactly once."""
        if state["done"]:
            return
        state["done"] = True
        if state["streamed"]:
            conn.abort_stream()  # a truncated body must not look complete
        else:
            conn.respond_error(ModelplaneError(message))


def _respond_whole(
    conn: HttpConnection, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    ctype = b"text/plain; charset=utf-8"
    extra = []
    for k, v in headers:
        if k == b"content-type":
            ctype = v
        elif k not in (b"content-length", b"connection", b"transfer-encoding", b"date"):
            extra.append(k + b": " + v + b"\r\n")
    conn.respond(status, body, ctype, b"".join(extra))
