"""What Sandbox.confine makes of a training's command: its own folder, no gateway socket, a
holder that outlives the platform (a declared host, real folders, no process started)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelplane.sandbox import SANDBOX_RESULTS, SANDBOX_SOCKET, Host, Sandbox
from modelplane.sandbox.bubblewrap import HOLDER
from modelplane.spec import DeploymentSpec


def _sandbox(tmp_path: Path, as_root: bool) -> Sandbox:
    host = Host("/usr/bin/bwrap", "/usr/bin/setpriv", as_root, (("/usr", None),), ())
    data = tmp_path / "data"
    return Sandbox(
        host,
        socket=str(data / "run" / "replicas.sock"),
        cache_root=data / "cache",
        forbidden=(str(data),),
        platform_env={"SECRET": "x", "LANG": "C.UTF-8"},
    )


def _spec(tmp_path: Path) -> DeploymentSpec:
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    return DeploymentSpec.parse({"name": "d", "model": {"path": str(model)}, "mode": "dedicated"})


def test_a_training_binds_its_folder_and_not_the_socket(tmp_path: Path) -> None:
    sandbox = _sandbox(tmp_path, as_root=False)
    folder = tmp_path / "data" / "trainings" / "d" / "u1"
    folder.mkdir(parents=True)
    argv, env = sandbox.confine(_spec(tmp_path), ["python", "-m", "x"], {"A": "1"}, training=folder)
    assert argv[: len(HOLDER)] == list(HOLDER) and argv[len(HOLDER)] == "/usr/bin/bwrap"
    binds = [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == "--bind"]
    assert (str(folder), SANDBOX_RESULTS) in binds
    assert SANDBOX_SOCKET not in argv and "--die-with-parent" in argv
    assert env["A"] == "1" and "SECRET" not in env
    # a replica of the same spec: the socket, no folder, no holder
    argv, _ = sandbox.confine(_spec(tmp_path), ["python"], {})
    assert argv[0] == "/usr/bin/bwrap" and SANDBOX_SOCKET in argv and SANDBOX_RESULTS not in argv


@pytest.mark.skipif(os.geteuid() != 0, reason="handing the folder to another uid needs root")
def test_as_root_the_folder_belongs_to_the_deployments_uid(tmp_path: Path) -> None:
    sandbox = _sandbox(tmp_path, as_root=True)
    folder = tmp_path / "data" / "trainings" / "d" / "u1"
    folder.mkdir(parents=True)
    (folder / "body").write_bytes(b"{}")
    sandbox.confine(_spec(tmp_path), ["python"], {}, training=folder)
    uid = sandbox.identity("d")
    assert uid is not None
    for path in (folder, folder / "body"):
        assert (path.stat().st_uid, path.stat().st_gid) == (uid.uid, uid.gid)
    assert folder.stat().st_mode & 0o777 == 0o700
