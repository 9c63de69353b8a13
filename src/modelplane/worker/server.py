"""The replica side of the frame protocol: decode, validate, predict, encode."""

from __future__ import annotations

import asyncio
import sys
import traceback
from typing import Any

from modelplane.errors import ModelplaneError
from modelplane.model.contract import LoadedModel, encode_output
from modelplane.worker.inputs import decode_inputs
from modelplane.worker.protocol import (
    FrameReader,
    Kind,
    error_body,
    response_frame,
    split_request,
)

_JSON = b"application/json"


class ReplicaProtocol(asyncio.Protocol):
    """Serves one gateway connection. Writes are coalesced into one syscall per loop tick."""

    def __init__(self, model: LoadedModel, hello: bytes, done: asyncio.Future[None]) -> None:
        self.model = model
        self.metadata = model.metadata
        self._hello = hello
        self._done = done
        self._reader = FrameReader(self._on_frame)
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._in_flight = 0
        self._stopping = False
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike
        self._transport = transport  # type: ignore[assignment]
        transport.write(self._hello)

    def connection_lost(self, exc: Exception | None) -> None:
        # The gateway went away (platform stopped or restarted): a replica never outlives it.
        if not self._done.done():
            self._done.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)

    def _on_frame(self, kind: int, request_id: int, payload: bytes) -> None:
        if kind == Kind.REQUEST:
            self._handle(request_id, payload)
        elif kind == Kind.STOP:
            self._stopping = True
            self._maybe_finish()

    def _handle(self, request_id: int, payload: bytes) -> None:
        model = self.model
        try:
            ctype, body = split_request(payload)
            inputs, is_json = decode_inputs(body, ctype.decode("latin-1"), self.metadata)
            if is_json:
                model.validate(inputs)
        except ModelplaneError as exc:
            self._send_error(request_id, exc)
            return
        try:
            result = model.call(inputs)
        except Exception as exc:
            self._model_failed(request_id, exc)
            return
        if model.is_async:
            self._in_flight += 1
            self._loop.create_task(self._finish_async(request_id, result))
        else:
            self._send_result(request_id, result)

    async def _finish_async(self, request_id: int, pending: Any) -> None:
        try:
            result = await pending
        except Exception as exc:
            self._model_failed(request_id, exc)
        else:
            self._send_result(request_id, result)
        finally:
            self._in_flight -= 1
            self._maybe_finish()

    def _send_result(self, request_id: int, result: Any) -> None:
        try:
            body, ctype = encode_output(result)
        except TypeError as exc:
            self._model_failed(request_id, exc)
            return
        self._write(response_frame(request_id, 200, ctype.encode("latin-1"), body))

    def _model_failed(self, request_id: int, exc: BaseException) -> None:
        traceback.print_exception(exc, file=sys.stderr)
        self._send_error(request_id, self.model.failure(exc))

    def _send_error(self, request_id: int, err: ModelplaneError) -> None:
        self._write(response_frame(request_id, err.status, _JSON, error_body(err)))

    def _write(self, data: bytes) -> None:
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out, self._out = self._out, []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(out) if len(out) > 1 else out[0])

    def _maybe_finish(self) -> None:
        if self._stopping and self._in_flight == 0 and not self._done.done():
            self._loop.call_soon(self._close)

    def _close(self) -> None:
        self._flush()
        if self._transport is not None:
            self._transport.close()
