"""Job listings and logs as OSCAR shows them (pure parts)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from modelplane.errors import InvalidInput
from modelplane.oscar.auth import basic_credentials
from modelplane.oscar.joblog import job_info, lines_between, page_offset
from modelplane.store.models import JobRow


def at(second: int) -> datetime:
    return datetime(2025, 1, 2, 3, 4, second, tzinfo=UTC)


def test_job_info_names_states_as_pod_phases() -> None:
    job = JobRow(id="j", state="succeeded", created_at=at(1), started_at=at(2), finished_at=at(5))
    assert job_info(job) == {
        "status": "Succeeded",
        "creation_time": "2025-01-02T03:04:01Z",
        "start_time": "2025-01-02T03:04:02Z",
        "finish_time": "2025-01-02T03:04:05Z",
    }
    assert job_info(JobRow(id="q", state="queued", created_at=at(1))) == {
        "status": "Pending",
        "creation_time": "2025-01-02T03:04:01Z",
    }


def test_lines_between_keeps_the_job_window() -> None:
    lines = [
        "2025-01-02T03:04:01.000000Z [r1] before",
        "2025-01-02T03:04:03.500000Z [r1] during",
        "2025-01-02T03:04:04.000000Z [platform] also during",
        "not a log line",
        "2025-01-02T03:04:09.000000Z [r1] after",
    ]
    assert lines_between(lines, at(2), at(5)) == ["during", "also during"]


def test_page_tokens() -> None:
    assert page_offset("") == 0 and page_offset("100") == 100
    with pytest.raises(InvalidInput):
        page_offset("abc")


def test_basic_credentials() -> None:
    header = "Basic " + base64.b64encode(b"ana:mp_secret:with-colon").decode()
    assert basic_credentials(header) == ("ana", "mp_secret:with-colon")
    assert basic_credentials("Bearer x") is None
    assert basic_credentials("Basic !!!") is None
    assert basic_credentials("Basic " + base64.b64encode(b"nocolon").decode()) is None
