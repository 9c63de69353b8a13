"""The gateway's side of the frame protocol: one persistent, multiplexed connection per replica.

Replicas dial in once their model is loaded and say hello; the gateway only then adds them to
their deployment's pool. Requests are written as frames with an id; writes are coalesced into one
syscall per event-loop tick, which under load sends many requests per write.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from modelplane.errors import ReplicaFailed, Timeout
from modelplane.gateway.reply import OnReply, Reply
from modelplane.worker.protocol import (
    FrameReader,
    Kind,
    error_body,
    frame,
    request_frame,
    response_frame,
    split_request,
    split_response,
)

RelayTarget = Callable[[bytes, bytes, OnReply, bytes], None]
"""Where relayed requests go: ``(content_type, body, on_reply, meta)``."""

_JSON = b"application/json"


class ReplicaConnection(asyncio.Protocol):
    """A connected, loaded replica. ``in_flight`` drives least-loaded replica choice."""

    def __init__(
        self,
        on_hello: Callable[[ReplicaConnection, dict[str, Any]], None],
        on_lost: Callable[[ReplicaConnection], None],
    ) -> None:
        self.relay: RelayTarget | None = None
        """Set: the peer is another platform process relaying requests to us (see relay.py)."""
        self._on_hello = on_hello
        self._on_lost = on_lost
        self._reader = FrameReader(self._on_frame)
        self._pending: dict[int, tuple[OnReply, float]] = {}
        self._next_id = 1
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.info: dict[str, Any] = {}
        self.replica_id = ""
        self.deployment = ""
        self.served = 0
        self.closed = False
        self.service_times: deque[float] | None = None
        """Set by the pool: where to record each answer's service time (for the advisor)."""
        self._last_done = 0.0
        self.lost_in_flight = 0
        """Requests still waiting when the connection dropped."""

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        pending, self._pending = self._pending, {}
        self.lost_in_flight = len(pending)
        if pending:
            err = ReplicaFailed(
                f"replica {self.replica_id} of deployment {self.deployment!r} exited while "
                "handling this request; it is being replaced",
                hint="retry the request; if it keeps failing, check `modelplane logs`",
                replica=self.replica_id,
            )
            failed = Reply.failed(err)
            for callback, _ in pending.values():
                callback(failed)
        if self.replica_id:
            self._on_lost(self)

    # -- frames -------------------------------------------------------------------------------
    def _on_frame(self, kind: int, request_id: int, payload: bytes) -> None:
        if kind == Kind.RESPONSE:
            entry = self._pending.pop(request_id, None)
            if entry is not None:  # None: it timed out and was answered already
                self.served += 1
                if self.service_times is not None:
                    # A sync replica answers in order, one at a time: a request's service began
                    # when it was sent or when the one before it was answered, if later.
                    now = self._loop.time()
                    self.service_times.append(now - max(entry[1], self._last_done))
                    self._last_done = now
                entry[0](Reply(*split_response(payload)))
        elif kind == Kind.HELLO:
            self.info = orjson.loads(payload)
            self.replica_id = str(self.info.get("replica_id", ""))
            self.deployment = str(self.info.get("deployment", ""))
            self._on_hello(self, self.info)
        elif kind == Kind.REQUEST and self.relay is not None:
            self._relayed(request_id, payload)

    def _relayed(self, request_id: int, payload: bytes) -> None:
        """A request relayed by another platform process: answer it on this connection."""
        content_type, meta, body = split_request(payload)

        def reply(answer: Reply) -> None:
            # the wire between platform processes carries bytes: a decided error is rendered
            # here, with its retry_after in the body, and typed again on the other side
            if answer.content_type:
                out = response_frame(request_id, answer.status, answer.content_type, answer.body)
            else:
                err = answer.error
                assert err is not None
                out = response_frame(request_id, err.status, _JSON, error_body(err))
            self._out.append(out)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._loop.call_soon(self._flush)

        assert self.relay is not None
        self.relay(content_type, body, reply, meta)

    def send(
        self,
        content_type: bytes,
        body: bytes | bytearray,
        callback: OnReply,
        meta: bytes = b"",
    ) -> None:
        request_id = self._next_id
        self._next_id = (request_id + 1) & 0xFFFFFFFF or 1
        self._pending[request_id] = (callback, self._loop.time())
        self._out.append(request_frame(request_id, content_type, body, meta))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out, self._out = self._out, []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def expire(self, now: float, timeout: float) -> int:
        """Answer 504 to requests older than ``timeout``; dicts keep send order, oldest first."""
        expired = 0
        for request_id, (callback, sent) in list(self._pending.items()):
            if now - sent < timeout:
                break
            del self._pending[request_id]
            err = Timeout(
                f"replica {self.replica_id} of deployment {self.deployment!r} did not answer "
                f"within {timeout:g} s",
                hint="the model is slow or saturated: retry later, raise scale.max, or raise "
                "the platform's --request-timeout",
            )
            callback(Reply.failed(err))
            expired += 1
        return expired

    def stop(self) -> None:
        """Ask the replica to finish what it has in flight and exit."""
        self._out.append(frame(Kind.STOP, 0, b""))
        self._flush()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class ReplicaListener:
    """The Unix socket replicas dial into. The folder is private to the platform's user.

    With ``tcp`` (host, port; port 0 picks a free one) it also listens on TCP, for replicas on
    other nodes and for other platform processes relaying requests. Over TCP anyone can connect,
    so the gateway admits a replica only with the secret it was started with, and a relay only
    with the secret the platform processes share (see ``Gateway.on_hello``).
    """

    def __init__(
        self,
        path: Path,
        on_hello: Callable[[ReplicaConnection, dict[str, Any]], None],
        on_lost: Callable[[ReplicaConnection], None],
        *,
        tcp: tuple[str, int] | None = None,
        advertise: str | None = None,
    ) -> None:
        self.path = path
        self._on_hello = on_hello
        self._on_lost = on_lost
        self._server: asyncio.AbstractServer | None = None
        self._tcp = tcp
        self._advertise = advertise
        self._tcp_server: asyncio.AbstractServer | None = None
        self.tcp_address: str | None = None
        """``tcp:host:port`` others dial, once listening on TCP."""

    @property
    def address(self) -> str:
        return f"unix:{self.path}"

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        if self.path.exists():
            self.path.unlink()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(
            lambda: ReplicaConnection(self._on_hello, self._on_lost), str(self.path), backlog=512
        )
        # Sandboxed replicas run under uids of their own; the folder (0700) keeps everyone else out.
        os.chmod(self.path, 0o666)
        if self._tcp is not None:
            host, port = self._tcp
            self._tcp_server = await loop.create_server(
                lambda: ReplicaConnection(self._on_hello, self._on_lost), host, port, backlog=512
            )
            bound = self._tcp_server.sockets[0].getsockname()[1]
            shown = self._advertise or ("127.0.0.1" if host in ("0.0.0.0", "", "::") else host)
            self.tcp_address = f"tcp:{shown}:{bound}"

    async def close(self) -> None:
        if self._tcp_server is not None:
            self._tcp_server.close()
            self._tcp_server = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self.path.exists():
            self.path.unlink()
