"""A replica's side of one gateway connection, on a fake transport: the hello, request frames in,
response frames out (coalesced per loop tick), validation before predict, the reply size limit,
and a STOP that lets in-flight requests finish before the connection closes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from modelplane.errors import InvalidInput, ModelFailed
from modelplane.model.contract import LoadedModel, ModelMetadata
from modelplane.worker.protocol import (
    FrameReader,
    Kind,
    frame,
    hello_frame,
    request_frame,
    split_response,
)
from modelplane.worker.server import Predictor, ReplicaProtocol

JSON = b"application/json"


class Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def frames(self) -> list[tuple[int, int, bytes]]:
        got: list[tuple[int, int, bytes]] = []
        FrameReader(lambda k, r, p: got.append((k, r, p))).feed(b"".join(self.writes))
        return got

    def responses(self) -> dict[int, tuple[int, bytes, bytes]]:
        return {r: split_response(p) for k, r, p in self.frames() if k == Kind.RESPONSE}


class Doubler:
    def predict(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return {"y": inputs["x"] * 2}


class Gate:
    """An async model whose answers wait until the test opens the gate."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.calls = 0

    async def predict(self, inputs: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        await self.open.wait()
        return {"done": inputs["n"]}


SCHEMA = {"type": "object", "required": ["x"], "properties": {"x": {"type": "number"}}}


async def turn() -> None:
    """Let the loop run what was scheduled: the flush, a finished task, the close."""
    for _ in range(3):
        await asyncio.sleep(0)


def connect(model: Any, schema: dict[str, Any] | None = None) -> tuple[ReplicaProtocol, Transport]:
    loaded = LoadedModel(model, ModelMetadata("m", input_schema=schema))
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    proto = ReplicaProtocol(loaded, hello_frame({"replica_id": "r1"}), done)
    transport = Transport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    return proto, transport


async def test_the_hello_goes_first_and_each_request_is_answered_under_its_id() -> None:
    proto, transport = connect(Doubler())
    assert transport.frames() == [(Kind.HELLO, 0, orjson.dumps({"replica_id": "r1"}))]
    proto.data_received(request_frame(7, JSON, b'{"x": 2}') + request_frame(9, JSON, b'{"x": 5}'))
    await turn()
    assert transport.responses() == {7: (200, JSON, b'{"y":4}'), 9: (200, JSON, b'{"y":10}')}


async def test_answers_of_one_read_leave_in_one_write_at_its_end() -> None:
    proto, transport = connect(Doubler())
    transport.writes.clear()
    proto.data_received(b"".join(request_frame(i, JSON, b'{"x": 1}') for i in range(1, 6)))
    # no loop tick needed, and one write for the five
    assert len(transport.writes) == 1 and sorted(transport.responses()) == [1, 2, 3, 4, 5]
    await turn()
    assert len(transport.writes) == 1


async def test_a_slow_model_s_answers_are_not_held_until_the_read_is_done() -> None:
    class Slow(Doubler):
        def predict(self, inputs: dict[str, Any]) -> dict[str, Any]:
            time.sleep(0.003)  # the model's own work (a sync model blocks its replica)
            return super().predict(inputs)

    proto, transport = connect(Slow())
    transport.writes.clear()
    proto.data_received(b"".join(request_frame(i, JSON, b'{"x": 1}') for i in range(1, 4)))
    # each answer older than 2 ms when the next was made went out before it
    assert len(transport.writes) >= 2 and sorted(transport.responses()) == [1, 2, 3]


async def test_inputs_are_checked_against_the_schema_before_predict() -> None:
    calls: list[Any] = []

    class Counting(Doubler):
        def predict(self, inputs: dict[str, Any]) -> dict[str, Any]:
            calls.append(inputs)
            return super().predict(inputs)

    proto, transport = connect(Counting(), SCHEMA)
    proto.data_received(request_frame(1, JSON, b'{"x": "two"}'))
    await turn()
    status, ctype, body = transport.responses()[1]
    assert (status, ctype, calls) == (InvalidInput.status, JSON, [])
    assert orjson.loads(body)["error"] == "invalid_input"


async def test_a_reply_over_the_limit_becomes_a_precise_error() -> None:
    loaded = LoadedModel(Doubler(), ModelMetadata("m"))
    predictor = Predictor(loaded, max_reply=10)
    got: list[tuple[int, bytes, bytes]] = []
    predictor.submit(JSON, b'{"x": 1}', lambda s, c, b: got.append((s, c, b)))
    predictor.submit(JSON, b'{"x": 123456789012}', lambda s, c, b: got.append((s, c, b)))
    assert got[0] == (200, JSON, b'{"y":2}')
    status, ctype, body = got[1]
    error = orjson.loads(body)
    assert (status, ctype, error["error"]) == (ModelFailed.status, JSON, ModelFailed.code)
    assert error["details"] == {"model": "m", "size": len(b'{"y":246913578024}'), "limit": 10}


async def test_async_requests_run_concurrently_and_stop_waits_for_them() -> None:
    gate = Gate()
    proto, transport = connect(gate)
    proto.data_received(request_frame(1, JSON, b'{"n": 1}') + request_frame(2, JSON, b'{"n": 2}'))
    await turn()
    assert gate.calls == 2 and proto.predictor.in_flight == 2  # both started, none answered
    proto.data_received(frame(Kind.STOP, 0, b""))
    await turn()
    assert not transport.closed  # two answers still owed
    gate.open.set()
    await turn()
    assert transport.responses() == {1: (200, JSON, b'{"done":1}'), 2: (200, JSON, b'{"done":2}')}
    assert transport.closed and proto.predictor.in_flight == 0


async def test_stop_with_nothing_in_flight_closes_at_once() -> None:
    proto, transport = connect(Doubler())
    proto.data_received(frame(Kind.STOP, 0, b""))
    await turn()
    assert transport.closed


async def test_losing_the_gateway_ends_the_replica() -> None:
    loaded = LoadedModel(Doubler(), ModelMetadata("m"))
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    proto = ReplicaProtocol(loaded, hello_frame({}), done)
    proto.connection_made(Transport())  # type: ignore[arg-type]
    proto.connection_lost(None)
    proto.connection_lost(None)  # a second notice is harmless
    assert done.done() and done.result() is None
