"""``PUT /api/v1/buckets/{bucket}/objects/{key}`` on the gateway's fast path.

An upload into an input bucket is the first step of every asynchronous job, and through FastAPI
its framework cost (routing, dependency injection, a request object, a response model) was most
of what a job cost the platform. Here it is an HTTP callback: authenticate and rate-limit as
every other route does, then one task that writes the object and enqueues its jobs — the same
:meth:`~modelplane.core.jobs.Jobs.put_object` the FastAPI route calls, so both answer
alike. Enqueues of uploads that arrive together are committed in one transaction
(:class:`~modelplane.jobs.group.GroupCommit`).

Only that one operation is taken; any other request under the prefix (listings, downloads, a
query string) goes to the FastAPI app as before, which also keeps documenting the route in the
OpenAPI document.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import unquote

import orjson

from modelplane.core.deps import Deps
from modelplane.core.jobs import Jobs, job_view, object_view
from modelplane.errors import InvalidInput, ModelplaneError
from modelplane.gateway.dataplane import DataPlane
from modelplane.gateway.http import Handler, HttpConnection, Request

log = logging.getLogger("modelplane.jobs")

PREFIX = b"/api/v1/buckets/"
_OBJECTS = b"/objects/"


class ObjectsFront:
    """Register with ``gateway.add_front(front.prefix, front.handle)``."""

    prefix = PREFIX

    def __init__(self, dataplane: DataPlane, deps: Deps, fallback: Handler) -> None:
        self.dataplane = dataplane
        self.deps = deps
        self.fallback = fallback
        self._tasks: set[asyncio.Task[None]] = set()

    def handle(self, req: Request, conn: HttpConnection) -> None:
        path, _, query = req.url.partition(b"?")
        bucket, sep, key = path[len(PREFIX) :].partition(_OBJECTS)
        if req.method != b"PUT" or query or not sep or not bucket or b"/" in bucket or not key:
            self.fallback(req, conn)
            return
        try:
            principal = self.dataplane.principal(req.authorization)
            self.dataplane.check_rate(principal)
            names = (unquote(bucket.decode("utf-8")), unquote(key.decode("utf-8")))
        except UnicodeDecodeError:
            conn.respond_error(InvalidInput("bucket and key must be UTF-8 (percent-encoded)"))
            return
        except ModelplaneError as exc:
            conn.respond_error(exc)
            return
        ctype = req.content_type.decode("latin-1") or "application/octet-stream"
        task = asyncio.get_running_loop().create_task(
            self._put(conn, names, bytes(req.body), ctype, principal)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _put(
        self, conn: HttpConnection, names: tuple[str, str], data: bytes, ctype: str, principal: Any
    ) -> None:
        bucket, key = names
        try:
            info, created = await Jobs(self.deps).put_object(bucket, key, data, ctype, principal)
        except ModelplaneError as exc:
            conn.respond_error(exc)
            return
        except Exception:  # a bug or the disk: a 500 with a message, the platform goes on
            log.exception("upload of %s/%s failed", bucket, key)
            conn.respond_error(
                ModelplaneError(f"storing {bucket}/{key} failed", hint="see the platform's log")
            )
            return
        body = {"object": object_view(info), "jobs": [job_view(j) for j in created]}
        conn.respond(201, orjson.dumps(body))
