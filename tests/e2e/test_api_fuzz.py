"""The API survives fuzzing: schemathesis against the platform's own OpenAPI document.

A real platform (``modelplane up``, token auth, sandbox on) and the real schemathesis CLI, with
a bounded number of examples per operation so CI spends about a minute and a half here. Checks:
no server error (5xx other than the documented 503s) and every response matching the document.
The token-revoking and user-removing operations are left out: the fuzzer would revoke the very
token it runs with (or remove its admin) and spend the rest of the run on 401s; their own tests
live in tests/integration/platform/test_accounts.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_cli import CLI, free_port, wait_http

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.fuzz]
EXAMPLES_PER_OPERATION = 10


@pytest.mark.timeout(600)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    up = subprocess.Popen(
        [*CLI, "up", "--data-dir", str(data), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"{url}/api/v1/health", timeout=60)
        token = (data / "admin.token").read_text().strip()
        run = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{url}/openapi.json",
                "--header",
                f"Authorization: Bearer {token}",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--max-examples",
                str(EXAMPLES_PER_OPERATION),
                "--seed",
                "12",
                "--workers",
                "1",
                "--exclude-operation-id-regex",
                "revoke|delete_user",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=540,
        )
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        assert "Server error" not in run.stdout
        assert up.poll() is None, "the platform died under fuzzing"
    finally:
        up.terminate()
        up.wait(30)
