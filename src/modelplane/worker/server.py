"""The replica side: decode, validate, predict, encode — and the frame protocol around it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson

from modelplane import fronts
from modelplane.errors import ModelplaneError
from modelplane.fronts import Codec
from modelplane.model.contract import JSON_TYPE, LoadedModel, encode_output
from modelplane.worker.batching import Batcher
from modelplane.worker.inputs import decode_inputs
from modelplane.worker.protocol import FrameReader, Kind, response_frame, split_request
from modelplane.worker.reply import MAX_REPLY, error_body, log_failure, not_encodable, too_large

_JSON = b"application/json"
_UNDECODED = object()
Reply = Callable[[int, bytes, bytes], None]
"""``(status, content_type, body)``"""


class Predictor:
    """Runs one prediction from raw bytes to raw bytes; shared by replicas and ``modelplane run``.

    A sync model runs inline: a replica is one model in one process, so a thread would only add
    a hop. An async model's calls run concurrently as tasks. Whatever the model returns or raises
    ends as exactly one reply (see :mod:`modelplane.worker.reply`); nothing escapes to the
    transport, so one request can never take the replica's other requests down with it.
    """

    def __init__(self, model: LoadedModel, max_reply: int = MAX_REPLY) -> None:
        self.model = model
        self.metadata = model.metadata
        self.max_reply = max_reply
        self.in_flight = 0
        self.idle: Callable[[], None] | None = None
        self._loop = asyncio.get_running_loop()
        self.batcher = Batcher(model) if model.batch is not None else None
        self._json_types: dict[bytes, bool] = {}

    def submit(self, content_type: bytes, body: bytes, reply: Reply, meta: bytes = b"") -> None:
        """Decode, predict, encode. ``meta`` names a protocol front (see modelplane.fronts)."""
        once = self._once(reply)
        try:
            self._submit(content_type, body, once, meta)
        except BaseException as exc:  # the last line of defence of the replica
            self._failed(exc, once, "failed while handling a request")

    def _submit(self, content_type: bytes, body: bytes, reply: Reply, meta: bytes) -> None:
        model = self.model
        codec: Codec | None = None
        params = b""
        inputs: Any = _UNDECODED
        try:
            if meta:
                name, _, params = meta.partition(b"\x00")
                codec = fronts.codec(name)
                inputs = codec.decode(model, content_type.decode("latin-1"), params, body)
            else:
                json_type = self._json_types.get(content_type)
                if json_type is None:
                    json_type = self._json_type(content_type)
                if json_type and body:  # the usual case, without taking the type apart again
                    try:
                        inputs = orjson.loads(body)
                    except orjson.JSONDecodeError:
                        inputs = _UNDECODED  # decode_inputs says why
                if inputs is _UNDECODED:
                    inputs, json_type = decode_inputs(
                        body, content_type.decode("latin-1"), self.metadata
                    )
                if json_type:
                    model.validate(inputs)
        except ModelplaneError as exc:
            reply(exc.status, _JSON, error_body(exc))
            return
        if self.batcher is not None:
            self.in_flight += 1
            self.batcher.add(
                inputs,
                lambda result: self._settle(result, None, reply, codec, params),
                lambda exc: self._settle(None, exc, reply, codec, params),
            )
            return
        try:
            result = model.call(inputs)
        except BaseException as exc:  # SystemExit too: a model's predict never ends a replica
            self._failed(exc, reply, "predict raised")
            return
        if model.is_async:
            self.in_flight += 1
            self._loop.create_task(self._finish(result, reply, codec, params))
        elif codec is None:
            self._send(result, reply)
        else:
            self._send_front(codec, params, result, reply)

    def _json_type(self, content_type: bytes) -> bool:
        """Whether ``decode_inputs`` reads a body of this type as JSON (kept per type)."""
        base = content_type.decode("latin-1").split(";", 1)[0].strip().lower()
        json_type = base in ("", "application/json") or base.endswith("+json")
        if len(self._json_types) >= 64:
            self._json_types.clear()
        self._json_types[content_type] = json_type
        return json_type

    def _once(self, reply: Reply) -> Reply:
        """Exactly one reply per request, never over the size limit."""
        sent = False
        limit = self.max_reply
        name = self.metadata.name

        def send(status: int, ctype: bytes, body: bytes) -> None:
            nonlocal sent
            if sent:
                return
            sent = True
            if len(body) > limit:
                err = too_large(name, len(body), limit)
                status, ctype, body = err.status, _JSON, error_body(err)
            reply(status, ctype, body)

        return send

    async def _finish(self, pending: Any, reply: Reply, codec: Codec | None, params: bytes) -> None:
        try:
            result = await pending
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # see _submit
            self._settle(None, exc, reply, codec, params, "predict raised")
        else:
            self._settle(result, None, reply, codec, params)

    def _settle(
        self,
        result: Any,
        exc: BaseException | None,
        reply: Reply,
        codec: Codec | None,
        params: bytes,
        context: str = "predict_batch failed",
    ) -> None:
        """The outcome of a request that was in flight (an async model's, or one of a batch):
        answer it and account for it."""
        try:
            if exc is not None:
                self._failed(exc, reply, context)
            elif codec is None:
                self._send(result, reply)
            else:
                self._send_front(codec, params, result, reply)
        except BaseException as problem:  # see submit
            self._failed(problem, reply, "failed while encoding a reply")
        finally:
            self.in_flight -= 1
            if self.in_flight == 0 and self.idle is not None:
                self.idle()

    def flush(self) -> None:
        """Send any inputs still gathering for a batch (the replica is asked to stop)."""
        if self.batcher is not None:
            self.batcher.flush()

    def _send(self, result: Any, reply: Reply) -> None:
        try:
            body, ctype = encode_output(result)
        except Exception as exc:  # TypeError, or whatever a result's own tolist() raised
            log_failure(exc, f"model {self.metadata.name!r}: its result cannot be encoded")
            err = not_encodable(self.metadata.name, exc)
            reply(err.status, _JSON, error_body(err))
            return
        reply(200, _JSON if ctype is JSON_TYPE else ctype.encode("latin-1"), body)

    def _send_front(self, codec: Codec, params: bytes, result: Any, reply: Reply) -> None:
        try:
            status, ctype, body = codec.encode(self.model, result, params)
        except ModelplaneError as exc:
            if exc.status >= 500:
                log_failure(exc, f"model {self.metadata.name!r}: {exc.message}")
            reply(exc.status, _JSON, error_body(exc))
            return
        except Exception as exc:
            self._failed(exc, reply, "failed while encoding a reply")
            return
        reply(status, ctype, body)

    def _failed(self, exc: BaseException, reply: Reply, context: str) -> None:
        log_failure(exc, f"model {self.metadata.name!r}: {context}")
        if isinstance(exc, ModelplaneError):
            err: ModelplaneError = exc
        else:
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
        self._feeding = False
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
        # The answers a sync model makes while this read's frames are handled leave in one
        # write at its end: coalesced as well as by a loop tick, without waiting for one.
        self._feeding = True
        try:
            self._reader.feed(data)
        finally:
            self._feeding = False
        if self._out:
            self._flush()

    def _on_frame(self, kind: int, request_id: int, payload: bytes) -> None:
        if kind == Kind.REQUEST:
            ctype, meta, body = split_request(payload)
            write = self._write
            self.predictor.submit(
                ctype, body, lambda s, c, b: write(response_frame(request_id, s, c, b)), meta
            )
        elif kind == Kind.STOP:
            self._stopping = True
            self.predictor.flush()
            self._maybe_finish()

    def _write(self, data: bytes) -> None:
        self._out.append(data)
        if self._feeding:  # written at the end of the read (see data_received), or sooner:
            if len(self._out) == 1:
                self._first_pending = time.perf_counter()
            elif time.perf_counter() - self._first_pending > 0.002:
                self._flush()  # a slow sync model: don't hold finished answers back
            return
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
