"""The replica side: decode, validate, predict, encode — and the frame protocol around it."""

from __future__ import annotations

import asyncio
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from modelplane import fronts
from modelplane.errors import ModelFailed, ModelplaneError
from modelplane.fronts import Codec
from modelplane.model.contract import LoadedModel, encode_output
from modelplane.worker.inputs import decode_inputs
from modelplane.worker.protocol import FrameReader, Kind, error_body, response_frame, split_request

_JSON = b"application/json"
Reply = Callable[[int, bytes, bytes], None]
"""``(status, content_type, body)``"""


class Predictor:
    """Runs one prediction from raw bytes to raw bytes; shared by replicas and ``modelplane run``.

    A sync model runs inline: a replica is one model in one process, so a thread would only add
    a hop. An async model's calls run concurrently as tasks.
    """

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.metadata = model.metadata
        self.in_flight = 0
        self.idle: Callable[[], None] | None = None
        self._loop = asyncio.get_running_loop()

    def submit(self, content_type: bytes, body: bytes, reply: Reply, meta: bytes = b"") -> None:
        """Decode, predict, encode. ``meta`` names a protocol front (see modelplane.fronts)."""
        model = self.model
        codec: Codec | None = None
        params = b""
        try:
            if meta:
                name, _, params = meta.partition(b"\x00")
                codec = fronts.codec(name)
                inputs = codec.decode(model, content_type.decode("latin-1"), params, body)
            else:
                inputs, is_json = decode_inputs(body, content_type.decode("latin-1"), self.metadata)
                if is_json:
                    model.validate(inputs)
        except ModelplaneError as exc:
            reply(exc.status, _JSON, error_body(exc))
            return
        try:
            result = model.call(inputs)
        except Exception as exc:
            self._failed(exc, reply)
            return
        if model.is_async:
            self.in_flight += 1
            self._loop.create_task(self._finish(result, reply, codec, params))
        elif codec is None:
            self._send(result, reply)
        else:
            self._send_front(codec, params, result, reply)

    async def _finish(self, pending: Any, reply: Reply, codec: Codec | None, params: bytes) -> None:
        try:
            result = await pending
        except Exception as exc:
            self._failed(exc, reply)
        else:
            if codec is None:
                self._send(result, reply)
            else:
                self._send_front(codec, params, result, reply)
        finally:
            self.in_flight -= 1
            if self.in_flight == 0 and self.idle is not None:
                self.idle()

    def _send(self, result: Any, reply: Reply) -> None:
        try:
            body, ctype = encode_output(result)
        except TypeError as exc:
            err = ModelFailed(
                f"model {self.metadata.name!r} returned a value that cannot be sent as JSON: {exc}",
                hint="return JSON-able values, bytes, or a modelplane.model.FileOutput",
                model=self.metadata.name,
            )
            reply(err.status, _JSON, error_body(err))
            return
        reply(200, ctype.encode("latin-1"), body)

    def _send_front(self, codec: Codec, params: bytes, result: Any, reply: Reply) -> None:
        try:
            status, ctype, body = codec.encode(self.model, result, params)
        except ModelplaneError as exc:
            reply(exc.status, _JSON, error_body(exc))
            return
        except Exception as exc:
            self._failed(exc, reply)
            return
        reply(status, ctype, body)

    def _failed(self, exc: BaseException, reply: Reply) -> None:
        traceback.print_exception(exc, file=sys.stderr)
        err = self.model.failure(exc)
        reply(err.status, _JSON, error_body(err))


class ReplicaProtocol(asyncio.Protocol):
    """Serves one gateway connection. Writes are coalesced into one syscall per loop tick."""

    def __init__(self, model: LoadedModel, hello: bytes, done: asyncio.Future[None]) -> None:
        self.predictor = Predictor(model)
        self.predictor.idle = self._maybe_finish
        self._hello = hello
        self._done = done
        self._reader = FrameReader(self._on_frame)
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._first_pending = 0.0
        self._stopping = False
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike
        self._transport = transport  # type: ignore[assignment]
        transport.write(self._hello)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        # The gateway went away (platform stopped or restarted): a replica never outlives it.
        if not self._done.done():
            self._done.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)

    def _on_frame(self, kind: int, request_id: int, payload: bytes) -> None:
        if kind == Kind.REQUEST:
            ctype, meta, body = split_request(payload)
            write = self._write
            self.predictor.submit(
                ctype, body, lambda s, c, b: write(response_frame(request_id, s, c, b)), meta
            )
        elif kind == Kind.STOP:
            self._stopping = True
            self._maybe_finish()

    def _write(self, data: bytes) -> None:
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._first_pending = time.perf_counter()
            self._loop.call_soon(self._flush)
        elif time.perf_counter() - self._first_pending > 0.002:
            # A slow sync model runs many requests in one loop step: don't hold finished
            # answers back until the whole batch is done.
            self._flush()
            self._flush_scheduled = True

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._first_pending = time.perf_counter()
        out, self._out = self._out, []
        if out and self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(out) if len(out) > 1 else out[0])

    def _maybe_finish(self) -> None:
        if self._stopping and self.predictor.in_flight == 0 and not self._done.done():
            self._loop.call_soon(self._close)

    def _close(self) -> None:
        self._flush()
        if self._transport is not None:
            self._transport.close()
