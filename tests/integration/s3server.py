"""Fixtures for the storage conformance suite: a real S3-speaking server on loopback.

The S3 server is moto's standalone server (``python -m moto.server``), started once per session
on a free port of 127.0.0.1 and stopped at the end. It speaks the S3 REST protocol over HTTP, so
the S3 store is exercised through boto3's real network path (signing, addressing, XML errors).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

_READY_DEADLINE_S = 30.0
_POLL_INTERVAL_S = 0.05
_START_ATTEMPTS = 3

MOTO_MISSING = (
    importlib.util.find_spec("moto") is None
    or importlib.util.find_spec("boto3") is None
    or importlib.util.find_spec("flask") is None
)
MOTO_MISSING_REASON = (
    "moto's S3 server is not installed: pip install boto3 'moto[server]' to run the S3 "
    "conformance tests"
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_http(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False


def _start_moto(log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start moto's server on a free port; return it and its URL once it answers HTTP."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + _READY_DEADLINE_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            # Most likely the port was taken between probing and binding; the caller retries.
            raise RuntimeError(f"moto server exited with {proc.returncode}: {log_path.read_text()}")
        if _answers_http(f"{url}/moto-api/"):
            return proc, url
        time.sleep(_POLL_INTERVAL_S)
    _stop(proc)
    raise RuntimeError(f"moto server not ready after {_READY_DEADLINE_S}s: {log_path.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of moto's standalone S3 server, running on loopback for the whole session."""
    if MOTO_MISSING:
        pytest.skip(MOTO_MISSING_REASON)
    log_dir = tmp_path_factory.mktemp("moto")
    errors: list[str] = []
    for attempt in range(_START_ATTEMPTS):
        try:
            proc, url = _start_moto(log_dir / f"server-{attempt}.log")
        except RuntimeError as exc:
            errors.append(str(exc))
            continue
        try:
            yield url
        finally:
            _stop(proc)
        return
    pytest.fail("could not start moto's S3 server:\n" + "\n".join(errors))
