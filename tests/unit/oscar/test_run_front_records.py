"""The /run front's service records: read once, checked once per turn of the event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

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
