"""The /run front's service records: read once, checked once per turn of the event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from modelplane.errors import Unauthenticated
from modelplane.gateway.dataplane import DataPlane
from modelplane.metrics import Metrics
from modelplane.oscar.front import OscarRunFront
from modelplane.oscar.records import ServiceRecords
from modelplane.oscar.services import ServiceNotFound
from modelplane.security import authenticator


def _front(root: Path) -> tuple[OscarRunFront, ServiceRecords]:
    dataplane = DataPlane(authenticator(None), Metrics())
    dataplane.add_deployment("svc", "alice")
    records = ServiceRecords(root)
    records.write("svc", {"name": "svc", "visibility": "private"}, None)
    return OscarRunFront(dataplane, records, lambda r, c: None), records


async def test_a_change_is_seen_from_the_next_loop_turn(tmp_path: Path) -> None:
    front, records = _front(tmp_path)
    record, owner = front.service("svc")
    assert (record.definition["visibility"], owner) == ("private", "alice")
    records.write("svc", {"name": "svc", "visibility": "public"}, "echo hi")
    await asyncio.sleep(0)  # a request read after the write finished is in a later turn
    record, _ = front.service("svc")
    assert record.definition["visibility"] == "public"
    assert record.script == "echo hi"


async def test_a_removed_service_is_not_found_from_the_next_turn(tmp_path: Path) -> None:
    front, records = _front(tmp_path)
    front.service("svc")
    records.remove("svc")
    await asyncio.sleep(0)
    with pytest.raises(ServiceNotFound):
        front.service("svc")


async def test_one_stat_per_turn_for_many_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    front, _ = _front(tmp_path)
    import modelplane.oscar.front as module

    calls: list[str] = []
    real = module.os.stat

    def counting(path: str) -> object:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(module.os, "stat", counting)
    for _ in range(16):
        front.service("svc")
    assert len(calls) == 1
    await asyncio.sleep(0)
    front.service("svc")
    assert len(calls) == 2


async def test_only_urls_that_name_a_service_are_kept(tmp_path: Path) -> None:
    front, _ = _front(tmp_path)
    assert front._service_name(b"/run/my%2Dservice?x=1") == "my-service"
    for url in (b"/run/", b"/run/a/b", *(b"/run/x/%d" % i for i in range(100))):
        assert front._service_name(url) == ""
    assert front._names == {b"/run/my%2Dservice?x=1": "my-service"}


class _Req:
    def __init__(self, authorization: bytes) -> None:
        self.url, self.method, self.body = b"/run/svc", b"POST", b'{"x": 1}'
        self.authorization = authorization


class _Conn:
    def __init__(self) -> None:
        self.errors: list[int] = []

    def respond_error(self, exc: Exception) -> None:
        self.errors.append(getattr(exc, "status", 0))


async def test_callers_are_checked_once_per_turn_and_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    front, _ = _front(tmp_path)
    import modelplane.oscar.front as module

    checked: list[bytes] = []
    real = module.invoking_principal

    def counting(header: bytes, *args: object, **kw: object) -> object:
        checked.append(header)
        if header == b"Bearer wrong":
            raise Unauthenticated("a valid token is required")
        return real(header, *args, **kw)  # type: ignore[arg-type]

    sent: list[object] = []
    monkeypatch.setattr(module, "invoking_principal", counting)
    monkeypatch.setattr(front.dataplane, "submit", lambda name, request, cb: sent.append(request))
    conn = _Conn()
    for auth in (b"Bearer a", b"Bearer a", b"Bearer wrong", b"Bearer a", b"Bearer wrong"):
        front.handle(_Req(auth), conn)  # type: ignore[arg-type]
    assert checked == [b"Bearer a", b"Bearer wrong", b"Bearer wrong"]  # a refusal is not kept
    assert (len(sent), conn.errors) == (3, [401, 401])
    await asyncio.sleep(0)  # the next turn checks again
    front.handle(_Req(b"Bearer a"), conn)  # type: ignore[arg-type]
    assert checked[-1] == b"Bearer a" and len(checked) == 4
