"""``modelplane run`` against ``deepaas-run``: the same module, the same requests, the same answers.

Both servers are started here on free loopback ports. ``deepaas-run`` is taken from
``$DEEPAAS_RUN`` or from beside this interpreter; deepaas 2.6.0 pins Werkzeug<3, so it may live in
a venv of its own (see docs/compatibility.md). Deliberate differences, documented there: JSON is
compact (compare parsed bodies), a returned file carries no Content-Disposition header, and our
404s have a JSON body.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.polling import wait_until

pytestmark = pytest.mark.integration
pytest.importorskip("deepaas", reason="deepaas is not installed: pip install deepaas==2.6.0")

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "models" / "deepaas_files"


def deepaas_run() -> str:
    found = os.environ.get("DEEPAAS_RUN") or str(Path(sys.executable).parent / "deepaas-run")
    if not os.access(found, os.X_OK):
        found = shutil.which("deepaas-run") or ""
    if not found:
        pytest.skip("deepaas-run not found: set DEEPAAS_RUN or pip install deepaas==2.6.0")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    cmd: list[str], env: dict[str, str], log: Path, timeout: float = 60
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [c.replace("{port}", str(port)) for c in cmd]
    out = log.open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}: {log.read_text()}")
        try:
            return httpx.get(url + "/", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, timeout=timeout, interval=0.2, what=f"{cmd[0]} answering")
    except AssertionError:
        proc.kill()
        raise RuntimeError(
            f"{cmd[0]} did not answer within {timeout:g} s: {log.read_text()}"
        ) from None
    return proc, url


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """``(deepaas_url, modelplane_url)`` serving the same module."""
    which: str = request.param
    tmp = tmp_path_factory.mktemp(f"deepaas-{which}")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "cache"), "HOME": str(tmp)}
    env.pop("DEEPAAS_V2_MODEL", None)
    ours = [sys.executable, "-m", "modelplane.cli.main", "run"]
    ours += ["--host", "127.0.0.1", "--port", "{port}", "--loader", "deepaas"]
    if which == "files":
        env_d = {**env, "PYTHONPATH": str(FIXTURE)}  # its dist-info declares the entry point
        ours += [str(FIXTURE)]
    else:  # deepaas-run serves its test model when no model is installed
        env_d = env
        (tmp / "any").mkdir()
        ours += [str(tmp / "any"), "--entrypoint", "deepaas.model.v2.test:TestModel"]
    theirs = [deepaas_run(), "--listen-ip", "127.0.0.1", "--listen-port", "{port}"]
    d_proc, d_url = start(theirs, env_d, tmp / "deepaas.log")
    try:
        m_proc, m_url = start(ours, env, tmp / "modelplane.log")
    except BaseException:
        stop(d_proc)
        raise
    try:
        yield d_url, m_url
    finally:
        stop(m_proc)
        stop(d_proc)


def both(
    urls: tuple[str, str], method: str, path: str, **kw: Any
) -> tuple[httpx.Response, httpx.Response]:
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        return tuple(client.request(method, u + path, **kw) for u in urls)  # type: ignore[return-value]


def same(urls: tuple[str, str], method: str, path: str, **kw: Any) -> httpx.Response:
    theirs, ours = both(urls, method, path, **kw)
    assert ours.status_code == theirs.status_code, (theirs.text, ours.text)
    t_type = theirs.headers["content-type"].split(";")[0]
    assert ours.headers["content-type"].split(";")[0] == t_type
    if t_type == "application/json":
        assert ours.json() == theirs.json()
    else:
        assert ours.content == theirs.content
    return ours


def upload(data: bytes, name: str = "sample.txt", field: str = "upload") -> dict[str, Any]:
    return {field: (name, data, "text/plain")}


@pytest.mark.parametrize("servers", ["test"], indirect=True)
def test_deepaas_test_model(servers: tuple[str, str]) -> None:
    theirs, ours = both(servers, "GET", "/")
    assert ours.json() == theirs.json()  # the help link too: /api is a Swagger UI
    for path in ("/v2/", "/v2/models/", "/v2/models/deepaas-test/"):
        same(servers, "GET", path)
    theirs, ours = both(servers, "GET", "/v2/models/deepaas-test")
    assert ours.status_code == theirs.status_code == 308
    assert ours.headers["location"] == theirs.headers["location"]
    predict = "/v2/models/deepaas-test/predict/"
    files = {"data": ("f.bin", b"\x00\x01", "application/octet-stream")}
    body = same(servers, "POST", predict + "?parameter=3", files=files).json()
    assert body["labels"] == [{"label": "foo", "probability": 1.0}]  # its schema: no wrapper
    same(servers, "POST", predict + "?parameter=3&parameter_three=bar", files=files)
    png = same(
        servers, "POST", predict + "?parameter=1", files=files, headers={"accept": "image/png"}
    )
    assert png.content.startswith(b"\x89PNG")
    same(servers, "POST", predict + "?parameter=1", files=files, headers={"accept": "text/plain"})
    same(servers, "POST", predict + "?parameter=1", files=files, headers={"accept": "text/html"})
    same(servers, "POST", predict)  # 422: data and parameter missing
    same(servers, "POST", predict + "?parameter=x&parameter_three=baz", files=files)
    same(servers, "POST", predict, data={"parameter": "4"}, files=files)  # form field


@pytest.mark.parametrize("servers", ["files"], indirect=True)
def test_module_with_file_choice_and_integer_arguments(servers: tuple[str, str]) -> None:
    for path in ("/v2/", "/v2/models/", "/v2/models/deepaas_files/"):
        same(servers, "GET", path)
    predict = "/v2/models/deepaas_files/predict/"
    text = b"first line\nsecond line\n"
    ok = same(servers, "POST", predict + "?repeat=2&tags=a&tags=b", files=upload(text)).json()
    pred = ok["predictions"]
    assert ok["status"] == "OK" and pred["value"] == 2 * len(text)
    assert pred["name"] == "upload" and pred["original_filename"] == "sample.txt"
    assert pred["content_type"] == "text/plain" and pred["temporary"] and pred["warmed"]
    assert pred["tags"] == ["a", "b"]
    same(servers, "POST", predict, data={"repeat": "3", "mode": "lines"}, files=upload(text))
    same(servers, "POST", predict + "?repeat=1&mode=upper", files=upload(text))
    plain = same(
        servers, "POST", predict + "?repeat=2", files=upload(text), headers={"accept": "text/plain"}
    )
    assert plain.text == str(2 * len(text))
    csv = same(
        servers,
        "POST",
        predict + "?repeat=1&mode=lines",
        files=upload(text),
        headers={"accept": "text/csv"},
    )
    assert csv.text == "name,mode,value\nsample.txt,lines,2\n"
    same(servers, "POST", predict + "?repeat=1", files=upload(text), headers={"accept": "x/y"})
    bad = same(servers, "POST", predict + "?repeat=9&mode=nope")
    assert set(bad.json()) == {"upload", "repeat", "mode"}
    same(servers, "POST", predict + "?repeat=two", files=upload(text))
    same(servers, "POST", predict, json={"repeat": 2})  # JSON arguments; the file is missing
    same(
        servers,
        "POST",
        predict,
        content=b'{"repeat": ',
        headers={"content-type": "application/json"},
    )
    theirs, ours = both(servers, "POST", "/v2/models/elsewhere/predict/")
    assert ours.status_code == theirs.status_code == 404
    theirs, ours = both(servers, "GET", "/swagger.json")
    assert ours.status_code == theirs.status_code == 200
    t_params = theirs.json()["paths"]["/v2/models/deepaas_files/predict/"]["post"]["parameters"]
    o_params = ours.json()["paths"]["/v2/models/deepaas_files/predict/"]["post"]["parameters"]
    keys = ("in", "name", "required", "type", "enum")
    assert [{k: p.get(k) for k in keys} for p in o_params] == [
        {k: p.get(k) for k in keys} for p in t_params
    ]
