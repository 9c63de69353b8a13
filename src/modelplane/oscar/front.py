"""OSCAR's ``POST /run/{service}`` on the gateway's fast path (not through FastAPI).

A synchronous invocation is a prediction: it is authenticated as OSCAR does (the service's token,
a user's token, or Basic user + token), checked against the service's visibility, turned into the
model's input (:func:`modelplane.oscar.invoke.request_for`) and given to the data plane's one
entry; the replica's answer is encoded as OSCAR's supervisor would
(:func:`~modelplane.oscar.invoke.encode_result`). No task per request.

The service's record (its definition and script) is read once and kept while its definition file
is unchanged: a ``stat`` per request instead of a store query and three file reads. Its owner is
the deployment's, as the data plane knows it.
"""

from __future__ import annotations

import asyncio
import base64
import os
from urllib.parse import unquote

from modelplane.errors import ModelplaneError
from modelplane.gateway.dataplane import DataPlane
from modelplane.gateway.http import Handler, HttpConnection, Request
from modelplane.gateway.render import retry_header
from modelplane.gateway.reply import Reply
from modelplane.gateway.router import CACHED_URLS
from modelplane.oscar import invoke
from modelplane.oscar.auth import check_invocable, invoking_principal
from modelplane.oscar.records import DEFINITION, Record, ServiceRecords
from modelplane.oscar.services import ServiceNotFound
from modelplane.security import Principal

PREFIX = b"/run/"


class OscarRunFront:
    """Register with ``gateway.add_front(front.prefix, front.handle)``; ``fallback`` answers
    what is not a ``POST /run/{name}`` (FastAPI's 404/405)."""

    prefix = PREFIX

    def __init__(
        self,
        dataplane: DataPlane,
        records: ServiceRecords,
        fallback: Handler,
        *,
        check_user: bool = True,
    ) -> None:
        self.dataplane = dataplane
        self.records = records
        self.fallback = fallback
        self.check_user = check_user
        self._cache: dict[str, tuple[tuple[int, int], Record]] = {}
        self._paths: dict[str, str] = {}
        self._names: dict[bytes, str] = {}
        self._fresh: set[str] = set()
        """Services whose definition was checked in this turn of the event loop."""
        self._allowed: dict[tuple[str, bytes], tuple[Principal, bool]] = {}
        """(service, Authorization) -> (caller, script?) of the requests let through in this
        turn of the event loop: the 16 read in one turn under load, with the same token, are
        checked once (the next turn checks again, as ``_fresh`` does for the definition)."""
        self._shapes: dict[tuple[bytes, bool], tuple[bytes, bool]] = {}
        """(replica content type, script) -> (answer content type, base64?) of 200 answers:
        a pure function of the two (``invoke.result_shape``), kept rather than recomputed."""

    def handle(self, req: Request, conn: HttpConnection) -> None:
        name = self._names.get(req.url)
        if name is None:
            name = self._service_name(req.url)
        if req.method != b"POST" or not name:
            self.fallback(req, conn)
            return
        allowed = self._allowed.get((name, req.authorization))
        if allowed is None:
            try:
                caller = invoking_principal(
                    req.authorization,
                    self.dataplane.authenticate,
                    check_user=self.check_user,
                )
                record, owner = self.service(name)
                check_invocable(name, caller, owner, record.definition)
            except ModelplaneError as exc:
                conn.respond_error(exc)
                return
            allowed = (caller, record.script is not None)
            if not self._allowed:
                asyncio.get_running_loop().call_soon(self._allowed.clear)
            self._allowed[(name, req.authorization)] = allowed
        caller, script = allowed
        request = invoke.request_for(bytes(req.body), script=script, principal=caller)
        shapes = self._shapes
        self.dataplane.submit(
            name, request, lambda reply: respond(conn, reply, script=script, shapes=shapes)
        )

    def _service_name(self, url: bytes) -> str:
        """The service a ``/run/{name}`` URL names ("": none). Only URLs that name one are
        kept, as the router keeps predict URLs: the same few come again and again, and a
        lookup costs less than unquoting."""
        raw = url.partition(b"?")[0][len(PREFIX) :]
        if not raw or b"/" in raw:
            return ""
        name = unquote(raw.decode("latin-1"))
        if len(self._names) >= CACHED_URLS:  # bounded: query strings make URLs endless
            self._names.clear()
        self._names[url] = name
        return name

    def service(self, name: str) -> tuple[Record, str]:
        """The service's record and owner, or 404."""
        owner = self.dataplane.owner(name)
        if owner is not None and name in self._fresh:
            return self._cache[name][1], owner
        path = self._paths.get(name)
        if path is None:  # joining paths costs more than the stat itself: once per service
            if len(self._paths) > 1000:
                self._paths.clear()
            path = self._paths[name] = str(self.records.folder(name) / DEFINITION)
        try:
            st = os.stat(path)
        except OSError:
            raise ServiceNotFound(name) from None
        if owner is None:
            raise ServiceNotFound(name)
        version = (st.st_ino, st.st_mtime_ns)
        cached = self._cache.get(name)
        if cached is not None and cached[0] == version:
            self._checked(name)
            return cached[1], owner
        record = self.records.read(name)
        if record is None:
            raise ServiceNotFound(name)
        if len(self._cache) > 1000:
            self._cache.clear()
            self._fresh.clear()
        self._cache[name] = (version, record)
        self._checked(name)
        return record, owner

    def _checked(self, name: str) -> None:
        """``name``'s definition was found unchanged in this turn of the event loop: the other
        requests read in the same turn (16 at once under load) take the record without a
        ``stat`` of their own. The next turn checks again, so a request sent after a change
        was written (after its answer, or after the file was replaced) sees it."""
        if not self._fresh:
            asyncio.get_running_loop().call_soon(self._fresh.clear)
        self._fresh.add(name)


def respond(
    conn: HttpConnection,
    reply: Reply,
    *,
    script: bool,
    shapes: dict[tuple[bytes, bool], tuple[bytes, bool]] | None = None,
) -> None:
    """The supervisor's answer for what the replica sent; the data plane's own errors in
    modelplane's JSON, with their Retry-After. ``shapes``: a memo of
    :func:`~modelplane.oscar.invoke.result_shape` to use."""
    if not reply.content_type:
        err = reply.error
        assert err is not None
        conn.respond_error(err)
        return
    if reply.status == 200 and shapes is not None:
        key = (reply.content_type, script)
        shape = shapes.get(key)
        if shape is None:
            out, b64 = invoke.result_shape(reply.content_type.decode("latin-1"), script=script)
            if len(shapes) >= 256:
                shapes.clear()
            shape = shapes[key] = (out.encode("latin-1"), b64)
        body = base64.b64encode(reply.body) if shape[1] else reply.body
        conn.respond(200, body, shape[0])
        return
    answer = invoke.encode_result(
        reply.status, reply.content_type.decode("latin-1"), reply.body, script=script
    )
    extra = retry_header(reply.error) if reply.status in (429, 503) else b""
    conn.respond(answer.status, answer.body, answer.content_type.encode("latin-1"), extra)
