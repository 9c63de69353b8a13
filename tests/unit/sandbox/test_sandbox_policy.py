"""The sandbox as data: what bubblewrap is told to expose, hide and drop (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelplane.errors import SandboxUnavailable
from modelplane.sandbox import probe
from modelplane.sandbox.policy import (
    SANDBOX_CACHE,
    SANDBOX_RESULTS,
    SANDBOX_SOCKET,
    UID_BASE,
    Confinement,
    Identity,
    bwrap_argv,
    identity_for,
    overlaps,
    sandbox_env,
)

SYSTEM = (("/usr", None), ("/etc", None), ("/bin", "usr/bin"))


def pairs(argv: list[str], flag: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == flag]


def test_root_drops_to_the_deployments_uid_with_no_capabilities_before_the_command() -> None:
    conf = Confinement(read_only=("/models/a",), identity=Identity(200_007, 200_007))
    argv = bwrap_argv(conf, ["python", "-m", "w"], as_root=True, system=SYSTEM)
    cut = argv.index("setpriv")
    assert argv[cut:] == [
        "setpriv",
        "--reuid=200007",
        "--regid=200007",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
        "python",
        "-m",
        "w",
    ]
    assert "--unshare-user" not in argv  # real uids, not a mapped root


def test_without_root_a_user_namespace_and_no_setpriv() -> None:
    argv = bwrap_argv(Confinement(read_only=()), ["true"], as_root=False, system=SYSTEM)
    assert "--unshare-user" in argv and "setpriv" not in argv
    assert argv[-2:] == ["--", "true"]


def test_only_the_listed_paths_are_exposed_and_the_system_read_only() -> None:
    conf = Confinement(
        read_only=("/srv/models/a", "/opt/venv"),
        cache="/data/cache/a",
        socket="/data/run/replicas.sock",
    )
    argv = bwrap_argv(conf, ["true"], as_root=True, system=SYSTEM)
    assert set(pairs(argv, "--ro-bind")) == {
        ("/usr", "/usr"),
        ("/etc", "/etc"),
        ("/srv/models/a", "/srv/models/a"),
        ("/opt/venv", "/opt/venv"),
    }
    assert pairs(argv, "--bind") == [
        ("/data/cache/a", SANDBOX_CACHE),
        ("/data/run/replicas.sock", SANDBOX_SOCKET),
    ]
    assert pairs(argv, "--symlink") == [("usr/bin", "/bin")]
    assert (argv[argv.index("--proc")], argv[argv.index("--proc") + 1]) == ("--proc", "/proc")
    for flag in ("--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session"):
        assert flag in argv


def test_a_training_gets_its_own_folder_and_no_gateway_socket() -> None:
    conf = Confinement(read_only=("/srv/models/a",), cache="/data/cache/a", results="/data/t/a/1")
    argv = bwrap_argv(conf, ["true"], as_root=True, system=SYSTEM)
    assert pairs(argv, "--bind") == [
        ("/data/cache/a", SANDBOX_CACHE),
        ("/data/t/a/1", SANDBOX_RESULTS),
    ]
    assert SANDBOX_SOCKET not in argv


def test_missing_parents_are_made_walkable_for_the_replica_uid() -> None:
    argv = bwrap_argv(Confinement(read_only=("/srv/models/a",)), ["true"], as_root=True)
    dirs = [argv[i + 1] for i, a in enumerate(argv) if a == "--dir"]
    assert dirs == ["/run", "/srv", "/run/modelplane", "/srv/models"]
    for i, a in enumerate(argv):
        if a == "--dir":
            assert argv[i - 2 : i] == ["--perms", "0755"]


def test_network_none_unshares_the_network_and_allowed_does_not() -> None:
    off = bwrap_argv(Confinement(read_only=(), network=False), ["true"], as_root=True)
    on = bwrap_argv(Confinement(read_only=()), ["true"], as_root=True)
    assert "--unshare-net" in off and "--unshare-net" not in on


def test_the_environment_never_reaches_the_command_line() -> None:
    argv = bwrap_argv(Confinement(read_only=()), ["true"], as_root=True)
    assert "--setenv" not in argv


def test_a_replica_inherits_no_platform_variable_but_locale() -> None:
    env = sandbox_env(
        {"AWS_SECRET_ACCESS_KEY": "x", "MODELPLANE_TOKEN": "t", "LANG": "C.UTF-8", "PATH": "/x"},
        {"MINE": "1"},
    )
    assert env["LANG"] == "C.UTF-8" and env["MINE"] == "1"
    assert "AWS_SECRET_ACCESS_KEY" not in env and "MODELPLANE_TOKEN" not in env
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin" and env["HOME"] == "/tmp"


def test_identities_are_stable_per_name_and_never_shared() -> None:
    first = identity_for("alice", {})
    assert first == identity_for("alice", {first.uid: "alice"})
    assert first.uid >= UID_BASE
    other = identity_for("bob", {})
    taken = {other.uid: "someone-else"}
    moved = identity_for("bob", taken)
    assert moved.uid != other.uid and moved.uid == UID_BASE + (other.uid - UID_BASE + 1) % 65_536


@pytest.mark.parametrize(
    ("path", "clash"),
    [
        ("/data", "/data"),
        ("/data/buckets/x", "/data"),
        ("/", "/data"),
        ("/database", None),
        ("/srv/model", None),
    ],
)
def test_overlaps_both_ways(path: str, clash: str | None) -> None:
    assert overlaps(path, ["/data"]) == clash


def test_without_bwrap_the_probe_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxUnavailable) as info:
        probe(("/data",))
    assert "bubblewrap (bwrap) is not installed" in info.value.message
    assert "apt-get install bubblewrap" in (info.value.hint or "")
    assert "--local" in (info.value.hint or "")
