"""A pip-installable DEEPaaS module, served by ``deepaas-run`` 2.6.0 and by ``modelplane run``.

The module (``tests/fixtures/models/deepaas_pkg``) is a real package with its own requirements
(deepaas 2.6.0, webargs 5), found through its ``deepaas.v2.model`` entry point. ``deepaas-run``
gets it installed by pip; modelplane gets the folder, as a user would deploy it, and runs it in
the environment it builds from the package's requirements (so ``UploadedFile`` is deepaas's own
from that environment, not the platform's). Every answer is
compared: status, content type and body.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.fronts.test_deepaas_compat import both, deepaas_run, same, start, stop
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
pytest.importorskip("deepaas", reason="deepaas is not installed: pip install deepaas==2.6.0")

PACKAGE = Path(__file__).resolve().parents[2] / "fixtures" / "models" / "deepaas_pkg"
PREDICT = "/v2/models/mp_demo/predict/"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("deepaas-pkg")
    folder = tmp / "mp_demo_pkg"
    shutil.copytree(PACKAGE, folder)
    site = tmp / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(folder),
        ],
        check=True,
        capture_output=True,
    )
    shutil.rmtree(folder / "build", ignore_errors=True)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "cache"), "HOME": str(tmp)}
    env.pop("DEEPAAS_V2_MODEL", None)
    theirs = [deepaas_run(), "--listen-ip", "127.0.0.1", "--listen-port", "{port}"]
    ours = [sys.executable, "-m", "modelplane.cli.main", "run", str(folder)]
    ours += ["--host", "127.0.0.1", "--port", "{port}"]
    d_proc, d_url = start(theirs, {**env, "PYTHONPATH": str(site)}, tmp / "deepaas.log")
    try:
        # modelplane builds the module's own environment first (deepaas 2.6.0, webargs 5...)
        m_proc, m_url = start(ours, env, tmp / "modelplane.log", timeout=300)
    except BaseException:
        stop(d_proc)
        raise
    try:
        yield d_url, m_url
    finally:
        stop(m_proc)
        stop(d_proc)


def image(name: str = "cat.png", data: bytes = PNG) -> dict[str, Any]:
    return {"demo_image": (name, data, "image/png")}


def test_documents_are_the_same(servers: tuple[str, str]) -> None:
    for path in ("/", "/v2/", "/v2/models/", "/v2/models/mp_demo/"):
        same(servers, "GET", path)
    theirs, ours = both(servers, "GET", "/v2/debug/")
    assert ours.status_code == theirs.status_code == 204


def test_every_field_kind_is_read_and_converted_alike(servers: tuple[str, str]) -> None:
    query = (
        "?demo_str=hi&demo_choice=dog&demo_int=7&demo_range=10&demo_float=2.5&demo_bool=true"
        "&demo_short=abc&demo_list_of_floats=1.5&demo_list_of_floats=2&demo_dict=%7B%22b%22%3A2%7D"
        "&demo_date=2024-02-29&demo_datetime=2024-02-29T10:11:12&demo_email=a%40b.org"
        "&demo_uuid=12345678-1234-5678-1234-567812345678&demo_url=https%3A%2F%2Fexample.org%2Fx"
    )
    body = same(servers, "POST", PREDICT + query, files=image()).json()
    pred = body["predictions"]
    assert body["status"] == "OK"
    assert pred["uploaded_file"] is True and pred["name"] == "demo_image"
    assert pred["original_filename"] == "cat.png" and pred["content_type"] == "image/png"
    assert pred["floats"] == [1.5, 2.0] and pred["dict"] == {"b": 2} and pred["bool"] is True
    assert pred["date"] == "2024-02-29" and pred["uuid"].startswith("12345678")
    defaults = same(servers, "POST", PREDICT, files=image()).json()["predictions"]
    assert defaults["str"] == "hello" and defaults["floats"] == [0.1, 0.2]
    form = {"demo_int": "3", "demo_list_of_floats": ["4", "5"]}
    files = {**image(), "demo_extra": ("x.txt", b"extra", "text/plain")}
    pred = same(servers, "POST", PREDICT, data=form, files=files).json()["predictions"]
    assert (
        pred["int"] == 3 and pred["floats"] == [4.0, 5.0] and pred["extra"] == [True, "demo_extra"]
    )


@pytest.mark.parametrize(
    "query",
    [
        "?demo_list_of_floats=a",  # {"demo_list_of_floats": {"0": [...]}}: an integer key
        "?demo_list_of_floats=1&demo_list_of_floats=x&demo_list_of_floats=y",
        "?demo_range=11&demo_choice=cow&demo_short=a&demo_email=nope&demo_url=nope",
        "?demo_int=1.5&demo_bool=maybe&demo_uuid=x&demo_date=2024-13-01&demo_datetime=x",
    ],
)
def test_invalid_arguments_are_422_with_deepaas_body(servers: tuple[str, str], query: str) -> None:
    r = same(servers, "POST", PREDICT + query, files=image())
    assert r.status_code == 422


def test_required_file_missing_is_422_for_multipart_and_json(servers: tuple[str, str]) -> None:
    r = same(servers, "POST", PREDICT, data={"demo_str": "x"}, files={"other": ("a", b"1", "x/y")})
    assert r.status_code == 422 and r.json() == {"demo_image": ["Missing data for required field."]}
    same(servers, "POST", PREDICT)
    nested = same(
        servers, "POST", PREDICT, json={"demo_boxes": [{"x": -1}, {"label": "far too long"}]}
    )
    assert nested.status_code == 422 and set(nested.json()["demo_boxes"]) == {"0", "1"}


def test_accept_decides_the_content_type(servers: tuple[str, str]) -> None:
    png = same(servers, "POST", PREDICT, files=image(), headers={"accept": "image/png"})
    assert png.headers["content-type"] == "image/png" and png.content == PNG
    text = same(servers, "POST", PREDICT, files=image(), headers={"accept": "text/plain"})
    assert text.text == f"cat.png: {len(PNG)} bytes"
    same(servers, "POST", PREDICT, files=image(), headers={"accept": "*/*"})
    bad = same(servers, "POST", PREDICT, files=image(), headers={"accept": "image/*"})
    assert bad.status_code == 422


def test_swagger_document_matches(servers: tuple[str, str]) -> None:
    theirs, ours = (r.json() for r in both(servers, "GET", "/swagger.json"))
    assert ours["swagger"] == theirs["swagger"] == "2.0"
    assert ours["paths"] == theirs["paths"]
    assert ours["definitions"] == theirs["definitions"]
    assert ours["info"]["title"] == theirs["info"]["title"]
    assert ours["info"]["version"] == theirs["info"]["version"]


def test_swagger_ui_is_served_without_a_cdn(servers: tuple[str, str]) -> None:
    theirs, ours = both(servers, "GET", "/api")
    assert ours.status_code == theirs.status_code == 200
    assert ours.headers["content-type"].startswith("text/html")
    assert "https://" not in ours.text.split("<body>")[0] + ours.text.split("<script>")[-1]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
        assert f"/api/static/{asset}" in ours.text
        r = httpx.get(servers[1] + f"/api/static/{asset}")
        assert r.status_code == 200 and len(r.content) > 1000
    assert httpx.get(servers[1] + "/api/static/..%2Fsecret").status_code == 404


def _until_finished(url: str, uid: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = httpx.get(f"{url}/v2/models/mp_demo/train/{uid}").json()
        return body if body["status"] != "running" else None

    return wait_until(finished, timeout=60, what=f"training {uid} finishing")


def test_training_as_deepaas_does_it(servers: tuple[str, str]) -> None:
    train = "/v2/models/mp_demo/train/"
    bad = same(servers, "POST", train + "?epochs=0")
    assert bad.status_code == 422 and "epochs" in bad.json()
    answers = []
    for url in servers:
        # ours starts a training process that imports the module first: seconds, not ms
        started = httpx.post(f"{url}{train}?epochs=4", timeout=60).json()
        assert started["status"] == "running" and len(started["uuid"]) == 32
        listed = httpx.get(url + train).json()
        assert started["uuid"] in [t["uuid"] for t in listed]
        done = _until_finished(url, started["uuid"])
        failed = httpx.post(f"{url}{train}?fail=true", timeout=60).json()
        failed = _until_finished(url, failed["uuid"])
        slow = httpx.post(f"{url}{train}?seconds=60", timeout=60).json()
        cancelled = httpx.delete(f"{url}{train}{slow['uuid']}", timeout=30)
        gone = httpx.get(f"{url}{train}{slow['uuid']}")
        answers.append((started, done, failed, cancelled, gone.status_code))
    (t_start, t_done, t_fail, t_cancel, t_gone), (o_start, o_done, o_fail, o_cancel, o_gone) = (
        answers
    )
    assert set(o_start) == set(t_start) and o_start["args"] == t_start["args"]
    assert o_done["status"] == t_done["status"] == "done"
    assert o_done["result"]["output"] == t_done["result"]["output"] == {"epochs": 4, "loss": 0.25}
    assert set(o_done["result"]) == set(t_done["result"]) == {"output", "finish_date", "duration"}
    assert (o_fail["status"], o_fail["message"]) == (t_fail["status"], t_fail["message"])
    # deepaas-run 2.6.0 cancels, forgets, then fails its own answer (500: the CancelledError of
    # the task it awaits escapes); we answer what its code means to: the cancelled training.
    assert t_cancel.status_code == 500
    assert o_cancel.status_code == 200 and o_cancel.json()["status"] == "cancelled"
    assert o_gone == t_gone == 404
    theirs, ours = both(servers, "GET", train + "0" * 32)
    assert ours.status_code == theirs.status_code == 404
