"""A service's jobs as OSCAR's ``/system/logs`` shows them: pages of job states, a job's logs,
and removal.

OSCAR lists Kubernetes jobs by pod phase; here they are the platform's job rows, their states
named as pod phases (queued: ``Pending``, running: ``Running``, succeeded: ``Succeeded``, failed:
``Failed``). A page token is the offset of the next page. A job's logs are the service's log
lines written while it ran (the script's output goes there), then its error if it failed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete

from modelplane.core.deps import Deps
from modelplane.errors import InvalidInput, NotFound
from modelplane.store.jobs import FAILED, QUEUED, RUNNING, SUCCEEDED
from modelplane.store.models import JobRow

PAGE_SIZE = 100
PHASES = {QUEUED: "Pending", RUNNING: "Running", SUCCEEDED: "Succeeded", FAILED: "Failed"}
_SLACK = timedelta(seconds=1)  # log lines reach the book a moment after the script wrote them


def _time(at: datetime | None) -> str | None:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at else None


def job_info(job: JobRow) -> dict[str, Any]:
    info: dict[str, Any] = {"status": PHASES.get(job.state, job.state)}
    for key, at in (
        ("creation_time", job.created_at),
        ("start_time", job.started_at),
        ("finish_time", job.finished_at),
    ):
        if at is not None:
            info[key] = _time(at)
    return info


def page_offset(page: str) -> int:
    if not page:
        return 0
    if not page.isdigit():
        raise InvalidInput(f"page: {page!r} is not a page token this platform gave out")
    return int(page)


async def list_jobs(deps: Deps, service: str, page: str = "") -> dict[str, Any]:
    assert deps.jobs is not None
    offset = page_offset(page)
    rows = await asyncio.to_thread(deps.jobs.list, service, None, PAGE_SIZE, offset)
    counts = (await asyncio.to_thread(deps.jobs.counts)).get(service, {})
    remaining = sum(counts.values()) - offset - len(rows)
    out: dict[str, Any] = {"jobs": {j.id: job_info(j) for j in rows}}
    if remaining > 0:
        out["next_page"] = str(offset + len(rows))
        out["remaining_jobs"] = remaining
    return out


async def job_of(deps: Deps, service: str, job_id: str) -> JobRow:
    assert deps.jobs is not None
    job = await asyncio.to_thread(deps.jobs.get, job_id)
    if job is None or job.deployment != service:
        raise NotFound(f"job {job_id!r} of service {service!r} does not exist", job=job_id)
    return job


def _stamp(line: str) -> datetime | None:
    head = line.split(" ", 1)[0]
    try:
        return datetime.strptime(head, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def lines_between(lines: list[str], start: datetime, end: datetime) -> list[str]:
    """The log book's lines stamped within [start, end], without stamp and source."""
    out = []
    for line in lines:
        at = _stamp(line)
        if at is None or not start <= at <= end:
            continue
        text = line.split(" ", 1)[1] if " " in line else ""
        if text.startswith("[") and "] " in text:
            text = text.split("] ", 1)[1]
        out.append(text)
    return out


async def job_logs(deps: Deps, service: str, job_id: str, now: datetime) -> str:
    job = await job_of(deps, service, job_id)
    out: list[str] = []
    if job.started_at is not None:
        end = (job.finished_at or now) + _SLACK
        lines = await asyncio.to_thread(deps.logs.tail, service, 5000)
        out = lines_between(lines, job.started_at, end)
    if job.state == FAILED and job.error:
        out.append(f"job failed: {job.error}")
    return "".join(line + "\n" for line in out)


def _delete(deps: Deps, service: str, job_id: str | None, every: bool) -> int:
    with deps.store.session() as s:
        q = delete(JobRow).where(JobRow.deployment == service)
        if job_id is not None:
            q = q.where(JobRow.id == job_id)
        elif not every:
            q = q.where(JobRow.state == SUCCEEDED)
        return int(s.execute(q).rowcount)  # type: ignore[attr-defined]


async def remove_job(deps: Deps, service: str, job_id: str) -> None:
    await job_of(deps, service, job_id)
    await asyncio.to_thread(_delete, deps, service, job_id, False)


async def remove_jobs(deps: Deps, service: str, every: bool) -> int:
    """Remove the service's succeeded jobs (``every``: all of them, as OSCAR's ``all=true``)."""
    return await asyncio.to_thread(_delete, deps, service, None, every)
