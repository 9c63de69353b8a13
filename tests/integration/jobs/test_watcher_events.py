"""Local buckets are watched by the kernel's file events, not by listing them again and again."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.integration.conftest import Harness
from tests.integration.jobs.test_jobs import all_finished, deploy_async
from tests.polling import eventually

pytestmark = pytest.mark.integration

# An hour between listings: within the test only the change feed can notice a dropped file.
NO_LISTING = {"stable_window": 2.0, "autoscale_interval": 0.05, "watch_interval": 3600.0}


@pytest.mark.parametrize("platform_settings", [NO_LISTING])
async def test_files_dropped_into_a_bucket_folder_become_jobs_without_a_rescan(
    harness: Harness, examples: Path
) -> None:
    folder = harness.platform.settings.buckets_dir / "echo-in"
    folder.mkdir(parents=True)
    (folder / "before.json").write_bytes(b'{"n": 0}')  # there before the deployment: listed once
    await deploy_async(harness, "echo", examples / "echo")
    await all_finished(harness, "echo", 1)

    (folder / "deep" / "er").mkdir(parents=True)  # new sub-folders are watched too
    (folder / "deep" / "er" / "one.json").write_bytes(b'{"n": 1}')
    (folder / "two.json").write_bytes(b'{"n": 2}')
    # An atomic write's temporary file is never an object (the renamed result is).
    (folder / ".modelplane-tmp-0123abcd.part").write_bytes(b"half written")
    data = await all_finished(harness, "echo", 3)
    assert data["counts"] == {"succeeded": 3}
    keys = sorted(j["input"]["key"] for j in data["jobs"])
    assert keys == ["before.json", "deep/er/one.json", "two.json"]

    # Overwriting an object with new content is a new input; the same content again is not.
    (folder / "two.json").write_bytes(b'{"n": 22}')
    data = await all_finished(harness, "echo", 4)
    r = await harness.http.get("/api/v1/buckets/echo-out/objects/two.json.json")
    assert r.json() == {"n": 22}
    # Results written to the output bucket never trigger anything.
    assert data["counts"] == {"succeeded": 4}


@pytest.mark.parametrize("platform_settings", [{**NO_LISTING, "max_queued_jobs": 2}])
async def test_files_dropped_into_a_bucket_respect_the_job_queue_bound(
    harness: Harness, fixture_models: Path
) -> None:
    # The bound uploads get (429 over max_queued_jobs) holds for dropped files too: they wait in
    # the bucket, not as jobs, and become jobs as the queue drains. None is lost.
    await deploy_async(harness, "slow", fixture_models / "faulty", scale={"replicas": 1})
    await harness.wait_ready("slow")
    folder = harness.platform.settings.buckets_dir / "slow-in"
    for i in range(6):
        (folder / f"f{i}.json").write_bytes(b'{"sleep": 0.3}')
    most_active, fewer_rows_seen = 0, False

    async def all_succeeded() -> bool:
        nonlocal most_active, fewer_rows_seen
        r = await harness.http.get("/api/v1/deployments/slow/jobs", params={"limit": 100})
        counts = r.json()["counts"]
        most_active = max(most_active, counts.get("queued", 0) + counts.get("running", 0))
        fewer_rows_seen |= sum(counts.values()) < 6
        return bool(counts.get("succeeded", 0) == 6)

    await eventually(all_succeeded, timeout=60, what="all six dropped files done")
    assert most_active <= 2, most_active
    assert fewer_rows_seen, "the files never had to wait"


@pytest.mark.parametrize("platform_settings", [{**NO_LISTING, "max_queued_jobs": 2}])
async def test_uploads_refused_for_a_full_queue_still_become_jobs_once_it_drains(
    harness: Harness, fixture_models: Path
) -> None:
    # An upload answers 429 when the queue is at its bound, but its object is already stored;
    # the platform's own write does not wake the watcher (it makes the jobs itself), so the
    # watcher must be told to look at what a refused upload left behind. None is lost.
    await deploy_async(harness, "slow", fixture_models / "faulty", scale={"replicas": 1})
    await harness.wait_ready("slow")
    statuses = []
    for i in range(5):
        r = await harness.http.put(
            f"/api/v1/buckets/slow-in/objects/u{i}.json",
            content=b'{"sleep": 0.3}',
            headers={"content-type": "application/json"},
        )
        statuses.append(r.status_code)
    assert statuses.count(201) >= 1 and statuses.count(429) >= 1, statuses
    assert set(statuses) == {201, 429}

    async def all_succeeded() -> bool:
        r = await harness.http.get("/api/v1/deployments/slow/jobs", params={"limit": 100})
        return bool(r.json()["counts"].get("succeeded", 0) == 5)

    await eventually(all_succeeded, timeout=60, what="all five uploads done")


@pytest.mark.parametrize("platform_settings", [NO_LISTING])
async def test_a_file_written_over_a_platform_upload_is_a_new_input(
    harness: Harness, examples: Path
) -> None:
    await deploy_async(harness, "echo", examples / "echo")
    r = await harness.http.put(
        "/api/v1/buckets/echo-in/objects/same.json",
        content=b'{"n": 1}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 201 and len(r.json()["jobs"]) == 1
    await all_finished(harness, "echo", 1)
    # The upload's own event has been dropped by now (its job is done); a script writing the
    # same key afterwards is a new input, seen through the file events.
    (harness.platform.settings.buckets_dir / "echo-in" / "same.json").write_bytes(b'{"n": 2}')
    data = await all_finished(harness, "echo", 2)
    assert data["counts"] == {"succeeded": 2}
    r = await harness.http.get("/api/v1/buckets/echo-out/objects/same.json.json")
    assert r.json() == {"n": 2}
