"""The native edge: a :class:`~modelplane.gateway.reply.Reply` as an HTTP response.

A replica's answer goes out as it came (its own error bodies included, with their Retry-After);
an error the data plane decided is rendered from its typed fields by
:meth:`HttpConnection.respond_error` — modelplane's JSON, ``Retry-After`` from the error's own
``retry_after``, ``WWW-Authenticate`` on 401. The other protocols render in their own modules
(:mod:`modelplane.gateway.oip`, :mod:`modelplane.oscar.front`).
"""

from __future__ import annotations

from modelplane.errors import ModelplaneError
from modelplane.gateway.http import HttpConnection
from modelplane.gateway.reply import Reply


def retry_header(err: ModelplaneError | None) -> bytes:
    """``retry-after: N\\r\\n`` for an error that carries one, else nothing."""
    value = None if err is None else err.retry_after_header
    return b"" if value is None else b"retry-after: " + value.encode() + b"\r\n"


def respond(conn: HttpConnection, reply: Reply) -> None:
    """Send ``reply`` on ``conn`` in modelplane's native shape."""
    if reply.content_type:  # the replica's own bytes
        status = reply.status
        extra = retry_header(reply.error) if status == 503 or status == 429 else b""
        conn.respond(status, reply.body, reply.content_type, extra)
        return
    err = reply.error
    assert err is not None  # a reply without bytes is always a decided error
    conn.respond_error(err)
