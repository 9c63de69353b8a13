"""A replica link that answers from a script instead of a process, for the data plane's tests.

It has what :class:`modelplane.gateway.pool.DeploymentPool` and the data plane use of a
:class:`~modelplane.gateway.replicas.ReplicaConnection`: ``in_flight``, ``send``, ``stop``,
``close`` and ``expire``. Requests are held until :meth:`answer` (or answered at once when
``auto`` is set), so a test decides when the replica is slow, fails or dies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from modelplane.errors import ReplicaFailed
from modelplane.gateway.reply import OnReply, Reply


@dataclass
class Sent:
    content_type: bytes
    body: bytes
    meta: bytes
    callback: OnReply


@dataclass
class FakeReplica:
    replica_id: str
    deployment: str
    auto: Callable[[Sent], Reply] | None = None
    """Answer every request at once with what this returns (None: hold until ``answer``)."""
    sent: list[Sent] = field(default_factory=list)
    held: list[Sent] = field(default_factory=list)
    served: int = 0
    stopped: bool = False
    closed: bool = False

    @property
    def in_flight(self) -> int:
        return len(self.held)

    def send(
        self, content_type: bytes, body: bytes | bytearray, callback: OnReply, meta: bytes = b""
    ) -> None:
        request = Sent(content_type, bytes(body), meta, callback)
        self.sent.append(request)
        if self.auto is not None:
            self.served += 1
            callback(self.auto(request))
        else:
            self.held.append(request)

    def answer(
        self, status: int = 200, content_type: bytes = b"application/json", body: bytes = b"{}"
    ) -> Sent:
        """Answer the oldest held request."""
        request = self.held.pop(0)
        self.served += 1
        request.callback(Reply(status, content_type, body))
        return request

    def die(self) -> None:
        """The process exits: every held request gets 502, as from the real link."""
        held, self.held = self.held, []
        err = ReplicaFailed(f"replica {self.replica_id} exited while handling this request")
        for request in held:
            request.callback(Reply.failed(err))

    def expire(self, now: float, timeout: float) -> int:
        return 0

    def stop(self) -> None:
        self.stopped = True

    def close(self) -> None:
        self.closed = True


def echo(request: Sent) -> Reply:
    """An ``auto`` answer: the body back, as the echo example model does."""
    return Reply(200, request.content_type, request.body)
