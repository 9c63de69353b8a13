"""Only the replica the platform started joins, on the local Unix socket too.

A real replica listener, a real data plane, real processes: an impostor that knows a pending
replica's id and deployment (but not its secret, or a wrong one) says hello on the gateway's
socket while a request waits for that deployment. It is hung up on and never receives the
request; the real replica, started by the local backend with its secret on an inherited pipe
(spawned) or in its own environment only (forked from the template), joins and answers it. The
secret is in neither replica's ``/proc/<pid>/environ``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from modelplane.backends.base import ReplicaLaunch
from modelplane.backends.local import LocalProcessBackend
from modelplane.gateway.dataplane import DataPlane
from modelplane.gateway.replicas import ReplicaListener
from modelplane.gateway.reply import PredictRequest, Reply
from modelplane.metrics import Metrics
from modelplane.security import LOCAL_USER, PLATFORM, authenticator
from modelplane.spec import DeploymentSpec
from modelplane.worker.main import SECRET_ENV

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

# A process of its own: dial the socket, say hello as `rid`, report what it got until hung up.
IMPOSTOR = """
import json, socket, sys
from modelplane.worker.protocol import hello_frame
path, info = sys.argv[1], json.loads(sys.argv[2])
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(path)
s.sendall(hello_frame(info))
got, closed = b"", False
try:
    while chunk := s.recv(65536):
        got += chunk
    closed = True
except TimeoutError:
    pass
print(json.dumps({"closed": closed, "received": len(got)}))
"""


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[tuple[DataPlane, ReplicaListener]]:
    dataplane = DataPlane(authenticator(None), Metrics())
    listener = ReplicaListener(tmp_path / "sock" / "r.sock", dataplane.on_hello, dataplane.on_lost)
    await listener.start()
    try:
        yield dataplane, listener
    finally:
        await listener.close()


async def impostor(listener: ReplicaListener, info: dict[str, object]) -> dict[str, object]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        IMPOSTOR,
        str(listener.path),
        json.dumps(info),
        stdout=subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    return dict(json.loads(out))


@pytest.mark.slow
@pytest.mark.parametrize("warm_template", [False, True], ids=["spawned", "forked"])
async def test_a_hello_without_the_replicas_secret_is_refused(
    plane: tuple[DataPlane, ReplicaListener], warm_template: bool
) -> None:
    dataplane, listener = plane
    spec = DeploymentSpec.parse(
        {
            "name": "sec",
            "model": {"path": str(EXAMPLES / "echo")},
            "mode": "dedicated",
            "scale": {"warm_template": warm_template},
        }
    )
    rid, secret = f"sec-{secrets.token_hex(3)}", secrets.token_urlsafe(24)
    dataplane.add_deployment("sec", LOCAL_USER.user)
    dataplane.expect(rid, "sec", secret)
    request = PredictRequest(b"application/json", b'{"x": 1}', principal=PLATFORM)
    waiting = asyncio.ensure_future(dataplane.predict("sec", request))
    hello = {"replica_id": rid, "deployment": "sec", "pid": 1}
    for who in ({}, {"secret": ""}, {"secret": "guess"}, {"secret": secret[:-1]}):
        got = await impostor(listener, {**hello, **who})
        assert got == {"closed": True, "received": 0}, who  # hung up on, no request sent
        assert dataplane.ready_count("sec") == 0
        assert not waiting.done()

    backend = LocalProcessBackend(log=lambda *_: None)
    try:
        await backend.prepare(spec)
        handle = await backend.start(
            ReplicaLaunch(rid, spec, listener.address, env={SECRET_ENV: secret})
        )
        reply: Reply = await asyncio.wait_for(waiting, 60)
        assert (reply.status, json.loads(reply.body)) == (200, {"x": 1})
        assert dataplane.ready_count("sec") == 1
        assert handle.pid is not None
        environ = Path(f"/proc/{handle.pid}/environ").read_bytes()
        assert secret.encode() not in environ
        assert SECRET_ENV.encode() not in environ
        # Once it is in, the same hello from anyone else changes nothing.
        got = await impostor(listener, {**hello, "secret": "guess"})
        assert got == {"closed": True, "received": 0}
        assert dataplane.ready_count("sec") == 1
    finally:
        await backend.close()
