"""Confining replica processes with bubblewrap (``bwrap``), probed once at start-up.

Why bubblewrap: it is the maintained, audited tool Flatpak builds on, packaged by Debian
(``bubblewrap``), needs no daemon, and costs one exec per sandbox: about what a fork costs,
which matters because warm templates fork replicas in milliseconds. Forked replicas inherit their
template's sandbox, so the price is paid once per template. Landlock alone cannot hide
processes or change identity; a container runtime would need a daemon and images.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modelplane.errors import SandboxUnavailable
from modelplane.model.oscar import LINKS
from modelplane.sandbox.policy import (
    SANDBOX_CACHE,
    SANDBOX_SOCKET,
    SYSTEM_PATHS,
    Confinement,
    Identity,
    bwrap_argv,
    identity_for,
    overlaps,
    sandbox_env,
)
from modelplane.spec import DeploymentSpec

INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`), or start with --local "
    "to run replicas unconfined on a single-user machine"
)

HOLDER = ("/bin/sh", "-c", '("$@" & wait $!) & echo $!', "modelplane-train")
"""What starts a training's bwrap: a subshell that only waits for it, whose pid is the first line
the command prints. ``--die-with-parent`` ties the sandbox to that subshell; the shell the
platform started exits at once, so nothing of the platform's (not even its event loop's child
transport, which kills a child still running when it is closed) owns the training, and it
outlives the platform, while killing the subshell still ends every process inside."""


@dataclass(frozen=True)
class Host:
    """What the probe found: tools, privileges, system paths, the interpreter's folders."""

    bwrap: str
    setpriv: str | None
    as_root: bool
    system: tuple[tuple[str, str | None], ...]
    runtime: tuple[str, ...]
    """The platform's interpreter and packages (modelplane included), exposed read-only."""
    gpus: tuple[str, ...] = ()


def runtime_paths(forbidden: tuple[str, ...]) -> tuple[str, ...]:
    """Folders the worker's interpreter needs outside /usr: venv, packages, modelplane itself."""
    import modelplane

    candidates = [
        sys.prefix,
        sys.exec_prefix,
        sys.base_prefix,
        sys.base_exec_prefix,
        str(Path(modelplane.__file__).resolve().parents[1]),
    ]
    # site-packages only: the current folder or a test runner's additions are not the worker's
    candidates += [p for p in sys.path if p.endswith("-packages") and os.path.isdir(p)]
    chosen: list[str] = []
    for raw in candidates:
        path = os.path.realpath(raw)
        if path == "/" or path.startswith(("/usr/", "/etc/")) or path == "/usr":
            continue
        if overlaps(path, forbidden) is not None:
            continue  # a checkout inside the data directory: never expose the data directory
        if any(path == c or path.startswith(c + "/") for c in chosen):
            continue
        chosen = [c for c in chosen if not c.startswith(path + "/")] + [path]
    return tuple(chosen)


def python_roots(python: str) -> list[str]:
    """A virtualenv interpreter's folder and what its ``.pth`` files add to ``sys.path``."""
    root = Path(python).parent.parent
    if not (root / "pyvenv.cfg").is_file():
        return []
    found = [str(root.resolve())]
    for pth in root.glob("lib/python*/site-packages/*.pth"):
        try:
            lines = pth.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.strip()
            if line and not line.startswith(("#", "import")) and os.path.isdir(line):
                found.append(os.path.realpath(line))
    return found


def probe(forbidden: tuple[str, ...]) -> Host:
    """Find bwrap and check it can build a sandbox here; raise with what to do if not."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed", hint=INSTALL_HINT)
    as_root = os.geteuid() == 0
    setpriv = shutil.which("setpriv")
    if as_root and setpriv is None:
        raise SandboxUnavailable(
            "setpriv (util-linux) is not installed; it drops replicas to their own uid",
            hint="install util-linux",
        )
    system = tuple(
        (p, os.readlink(p) if os.path.islink(p) else None)
        for p in SYSTEM_PATHS
        if os.path.lexists(p)
    )
    host = Host(bwrap, setpriv, as_root, system, runtime_paths(forbidden))
    argv = bwrap_argv(
        Confinement(read_only=(), identity=Identity(65534, 65534) if as_root else None),
        ["true"],
        bwrap=bwrap,
        setpriv=setpriv or "setpriv",
        as_root=as_root,
        system=system,
    )
    try:
        done = subprocess.run(argv, capture_output=True, timeout=10, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"bubblewrap does not run: {exc}", hint=INSTALL_HINT) from None
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
        raise SandboxUnavailable(
            f"bubblewrap cannot build a sandbox here: {why}",
            hint="without root, bubblewrap needs unprivileged user namespaces "
            "(sysctl kernel.unprivileged_userns_clone=1); or start with --local",
        )
    return Host(bwrap, setpriv, as_root, system, host.runtime, tuple(glob.glob("/dev/nvidia*")))


@dataclass
class Sandbox:
    """Turns a replica's (or template's) command into a confined one.

    ``forbidden``: host paths no sandbox may expose, even partly (the data directory).
    ``owned_inside``: folders inside a forbidden path whose subfolder named after a deployment
    may be that deployment's model folder (OSCAR script services: ``oscar/<service>``).
    ``shared_inside``: folders inside a forbidden path whose subfolders any deployment may see
    read-only (per-model environments, shared by hash of their requirements).
    """

    host: Host
    socket: str | None
    cache_root: Path
    forbidden: tuple[str, ...]
    owned_inside: tuple[str, ...] = ()
    shared_inside: tuple[str, ...] = ()
    platform_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    _uids: dict[int, str] = field(default_factory=dict)

    def identity(self, deployment: str) -> Identity | None:
        if not self.host.as_root:
            return None
        ident = identity_for(deployment, self._uids)
        self._uids[ident.uid] = deployment
        return ident

    def exposable(self, path: str, what: str, deployment: str) -> str:
        """``path`` resolved, if ``deployment``'s sandbox may expose it; raise if not."""
        real = os.path.realpath(path)
        clash = overlaps(real, self.forbidden)
        if clash is not None and not (
            any(_within(real, f"{root}/{deployment}") for root in self.owned_inside)
            or any(_within(real, root) and real != root for root in self.shared_inside)
        ):
            raise SandboxUnavailable(
                f"{what} {path!r} overlaps the platform's data directory, which replicas never see",
                hint="put the model in a folder of its own outside the data directory",
            )
        return real

    def cache_for(self, deployment: str, ident: Identity | None) -> Path:
        cache = self.cache_root / deployment
        cache.mkdir(parents=True, exist_ok=True)
        _own(cache, ident)
        os.chmod(cache, 0o700)
        return cache

    def links_of(self, model: str, deployment: str, ident: Identity | None) -> list[str]:
        """The folders an OSCAR service's script links into its runs (its ``mount`` and
        ``volume``), read-write. Honoured only in a service folder the platform wrote itself
        (``oscar/<deployment>``): a links file in a user's own model folder is ignored."""
        if not any(_within(model, f"{root}/{deployment}") for root in self.owned_inside):
            return []
        try:
            links = json.loads((Path(model) / LINKS).read_bytes()).get("links", [])
        except (OSError, ValueError):
            return []
        found = []
        for link in links:
            target = Path(str(link.get("to", "")))
            if not target.is_absolute():
                continue
            target.mkdir(parents=True, exist_ok=True)
            _own(target, ident)
            found.append(os.path.realpath(target))
        return found

    def confine(
        self,
        spec: DeploymentSpec,
        command: list[str],
        env: Mapping[str, str],
        *,
        python: str | None = None,
        training: Path | None = None,
    ) -> tuple[list[str], dict[str, str]]:
        """``(argv, env)`` running ``command`` inside ``spec``'s sandbox.

        ``env``: the variables the replica is meant to have (the spec's and the launch's); the
        platform's own environment is not passed on. ``python``: the interpreter; a per-model
        environment's (a virtualenv) is exposed read-only with the paths its ``.pth`` files add.
        ``training``: the command is a DEEPaaS training, not a replica: this folder of its own is
        exposed read-write at :data:`SANDBOX_RESULTS`, it gets no gateway socket, and it outlives
        the platform's process (a restart finds it still running): bwrap's parent is then a
        shell that only waits for it (:data:`HOLDER`), whose pid the command prints first.
        """
        model = self.exposable(spec.model.path, "model folder", spec.name)
        read_only = [model, *self.host.runtime]
        if python is not None:
            for root in python_roots(python):
                if not any(_within(root, r) for r in self.host.runtime):
                    read_only.append(self.exposable(root, "environment", spec.name))
        ident = self.identity(spec.name)
        cache = self.cache_for(spec.name, ident)
        if training is not None:
            _own(training, ident)
            os.chmod(training, 0o700)
        conf = Confinement(
            read_only=tuple(dict.fromkeys(read_only)),
            read_write=tuple(self.links_of(model, spec.name, ident)),
            cache=str(cache),
            socket=self.socket if training is None else None,
            identity=ident,
            network=spec.network != "none",
            chdir=model,
            devices=self.host.gpus if spec.resources.gpu > 0 else (),
            results=str(training) if training is not None else None,
        )
        argv = bwrap_argv(
            conf,
            command,
            bwrap=self.host.bwrap,
            setpriv=self.host.setpriv or "setpriv",
            as_root=self.host.as_root,
            system=self.host.system,
        )
        if training is not None:
            argv = [*HOLDER, *argv]
        return argv, sandbox_env(self.platform_env, self.launch_env(env))

    @staticmethod
    def launch_env(env: Mapping[str, str]) -> dict[str, str]:
        """``env`` as a sandboxed process sees it: the cache folder at its inside path."""
        return {**env, "MODELPLANE_CACHE_DIR": SANDBOX_CACHE, "XDG_CACHE_HOME": SANDBOX_CACHE}

    def gateway_address(self, address: str) -> str:
        """The gateway's address as a sandboxed replica dials it."""
        if self.socket is not None and address == f"unix:{self.socket}":
            return f"unix:{SANDBOX_SOCKET}"
        return address


def _own(path: Path, ident: Identity | None) -> None:
    """Hand ``path`` (and, the first time, what is in it) to the replicas' uid."""
    if ident is None:
        return
    st = path.stat()
    if (st.st_uid, st.st_gid) == (ident.uid, ident.gid):
        return
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.lchown(os.path.join(root, name), ident.uid, ident.gid)
    os.chown(path, ident.uid, ident.gid)


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")
