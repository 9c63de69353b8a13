"""Invoking a service as OSCAR does: the event body in, the supervisor's answer out.

Pure helpers for the codec (:func:`decode_event`, :func:`encode_result`) and the two calls:
:func:`run` (synchronous, through the data plane's entry like any prediction; the platform serves
``/run`` on its fast path, :mod:`modelplane.oscar.front`, with the same helpers) and :func:`submit`
(asynchronous: the event becomes an object in the service's input bucket, hence a job).

The event body follows OSCAR's supervisor: a JSON document is passed as it is; anything else is
base64-decoded (when it is not valid base64 it is passed as it is, where the supervisor would
decode what it could). A script service answers like the supervisor: its one output file base64
encoded, several as a base64 zip, none: the script's output as plain text. A service that runs a
model answers JSON and text as they are and anything else base64-encoded.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from dataclasses import dataclass

import orjson

from modelplane.core.deps import Deps
from modelplane.core.jobs import Jobs
from modelplane.errors import InvalidInput, ModelplaneError
from modelplane.gateway.reply import PredictRequest, Reply
from modelplane.model.oscar import LOG_CONTENT_TYPE
from modelplane.oscar.fdl import service_from_dict
from modelplane.oscar.records import Record
from modelplane.security import Principal

OCTET = "application/octet-stream"
JSON = "application/json"


@dataclass(frozen=True)
class Event:
    """What goes to the model: the bytes and their content type."""

    data: bytes
    content_type: str


def decode_event(body: bytes, *, script: bool) -> Event:
    """The model's input from an OSCAR request body (see the module docstring)."""
    data, content_type = _event(body, script)
    return Event(data, content_type.decode("latin-1"))


_OCTET = OCTET.encode()
_JSON = JSON.encode()


def _event(body: bytes, script: bool) -> tuple[bytes, bytes]:
    stripped = body.strip()
    if stripped[:1] in (b"{", b"["):
        try:
            orjson.loads(stripped)
        except orjson.JSONDecodeError:
            pass
        else:
            return body, _OCTET if script else _JSON
    compact = b"".join(stripped.split())
    if compact:
        try:
            return base64.b64decode(compact, validate=True), _OCTET
        except (binascii.Error, ValueError):
            pass
    return body, _OCTET


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes


def encode_result(status: int, content_type: str, body: bytes, *, script: bool) -> Answer:
    """The HTTP answer for what a replica returned."""
    if status != 200:
        return Answer(status, content_type or JSON, body)
    out, b64 = result_shape(content_type, script=script)
    return Answer(200, out, base64.b64encode(body) if b64 else body)


def result_shape(content_type: str, *, script: bool) -> tuple[str, bool]:
    """The content type of a 200 answer for a replica's ``content_type``, and whether its body
    is base64-encoded (a pure function of the two: the fast path keeps it per content type)."""
    base = content_type.split(";", 1)[0].strip().lower()
    if content_type == LOG_CONTENT_TYPE:
        return "text/plain; charset=utf-8", False
    if not script and (base == JSON or base.endswith("+json") or base.startswith("text/")):
        return content_type, False
    return "text/plain; charset=utf-8", True


def request_for(body: bytes, *, script: bool, principal: Principal) -> PredictRequest:
    """The data plane's request for an OSCAR event body (see :func:`decode_event`)."""
    data, content_type = _event(body, script)
    return PredictRequest(content_type, data, principal=principal)


def answer(reply: Reply, *, script: bool) -> Answer:
    """The HTTP answer for a reply the replica sent (errors included, as it sent them); an error
    the data plane decided is raised, typed, for the edge to render."""
    if not reply.content_type:
        assert reply.error is not None
        raise reply.error
    return encode_result(
        reply.status, reply.content_type.decode("latin-1"), reply.body, script=script
    )


async def run(deps: Deps, record: Record, body: bytes, principal: Principal) -> Answer:
    """A synchronous invocation: the data plane's one entry, like any prediction."""
    script = record.script is not None
    request = request_for(body, script=script, principal=principal)
    return answer(await deps.dataplane.predict(record.name, request), script=script)


async def submit(deps: Deps, record: Record, body: bytes) -> str:
    """An asynchronous invocation: the event is stored in the service's input bucket (under its
    input folder) and becomes a job there. Returns the job's id."""
    if deps.storage is None or deps.jobs is None:
        raise ModelplaneError("this platform runs no jobs")
    extra = {} if record.script is None else {"script": record.script}
    service = service_from_dict(record.definition | extra)
    event = decode_event(body, script=True)
    folder = service.input_folder
    name = f"event-file-{uuid.uuid4()}"  # as the supervisor names an event it saves
    key = f"{folder}/{name}" if folder else name
    info = await asyncio.to_thread(
        deps.storage.put, service.input_bucket, key, event.data, event.content_type
    )
    for job in await Jobs(deps).trigger(service.input_bucket, info, only=record.name):
        if job.deployment == record.name:
            return job.id
    raise InvalidInput(
        f"service {record.name!r} took no job for its input bucket {service.input_bucket!r}"
    )
