"""A change feed names a new folder, not the files written into it before the kernel watched it:
the watcher lists such a folder, so those files become jobs too (the kernel's race between
``mkdir`` and the watch on the new folder, which made files in fresh sub-folders go unnoticed)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from modelplane.jobs.watcher import BucketWatcher
from modelplane.spec import DeploymentSpec
from modelplane.storage import LocalBucketStore
from modelplane.store.jobs import Job, NewJob


class Recorded:
    def __init__(self) -> None:
        self.jobs: list[NewJob] = []

    async def __call__(self, jobs: list[NewJob]) -> list[tuple[Job, bool]]:
        self.jobs.extend(jobs)
        rows = [
            SimpleNamespace(deployment=j.deployment, input_key=j.input_key, input_etag=j.input_etag)
            for j in jobs
        ]
        return [(row, True) for row in rows]  # type: ignore[misc]


def watcher(tmp_path: Path) -> tuple[BucketWatcher, LocalBucketStore, Recorded]:
    storage = LocalBucketStore(tmp_path / "buckets")
    storage.create_bucket("echo-in")
    spec = DeploymentSpec.parse(
        {"name": "echo", "model": {"path": "/m"}, "input": "echo-in", "output": "echo-out"}
    )
    deployments = SimpleNamespace(deployments={"echo": SimpleNamespace(spec=spec, owner="ann")})
    recorded = Recorded()
    w = BucketWatcher(jobs=None, storage=storage, deployments=deployments, enqueue=recorded)  # type: ignore[arg-type]
    return w, storage, recorded


async def test_a_new_folder_named_by_an_event_is_listed(tmp_path: Path) -> None:
    w, storage, recorded = watcher(tmp_path)
    storage.put("echo-in", "deep/er/one.json", b'{"n": 1}', "application/json")
    storage.put("echo-in", "deep/two.json", b'{"n": 2}', "application/json")
    storage.put("echo-in", "elsewhere.json", b'{"n": 3}', "application/json")
    # The events: the new folder "deep" only (its files landed before its watch).
    created = await w.notice({("echo-in", "deep")})
    assert created == 2
    assert sorted(j.input_key for j in recorded.jobs) == ["deep/er/one.json", "deep/two.json"]
    assert {j.content_type for j in recorded.jobs} == {"application/json"}
    # The files' own events, arriving later, make no second job.
    assert await w.notice({("echo-in", "deep/er/one.json"), ("echo-in", "deep/two.json")}) == 0
    assert len(recorded.jobs) == 2


async def test_a_name_gone_again_is_neither_a_job_nor_an_error(tmp_path: Path) -> None:
    w, _, recorded = watcher(tmp_path)
    assert await w.notice({("echo-in", "vanished.json"), ("echo-in", "gone/folder")}) == 0
    assert recorded.jobs == []
