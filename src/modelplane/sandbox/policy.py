"""What a replica may see, as data, and the bubblewrap command line that enforces it (pure).

A :class:`Confinement` lists everything a sandboxed process is given: the system's read-only
runtime (``/usr``, ``/etc``, the interpreter and its packages), its model folder read-only, its
own cache folder read-write, a private ``/tmp``, the gateway's socket, and an identity. Anything
not listed does not exist inside: the platform's data directory, its store, token files, other
deployments' folders and buckets, other processes. :func:`bwrap_argv` renders it; no I/O here, so
the rendering is unit-tested line by line.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

SANDBOX_SOCKET = "/run/modelplane/gateway.sock"
"""Where the gateway's socket appears inside every sandbox."""

SANDBOX_CACHE = "/cache"
"""Where the deployment's own cache folder appears inside (its host path is in the data dir)."""

SANDBOX_RESULTS = "/run/modelplane/training"
"""Where a training's own folder appears inside (its request body in, its record out; the host
path is in the data dir, which the training never sees whole)."""

UID_BASE = 200_000
UID_SPAN = 65_536
"""Replica identities when the platform runs as root: one uid (and gid) per deployment, from
``UID_BASE`` upwards, outside the range Debian gives to people and system services."""

SYSTEM_PATHS = ("/usr", "/etc", "/opt", "/bin", "/sbin", "/lib", "/lib64", "/lib32")
"""The system's read-only runtime, where present (a symlink stays a symlink). ``/etc`` carries no
platform secret (the platform keeps its own in the data directory), and ``/etc/shadow`` stays
unreadable to a replica's uid."""

SAFE_ENV = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")
"""The only variables of the platform's own environment a replica inherits."""


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int


@dataclass(frozen=True)
class Confinement:
    """Everything one sandboxed process (a template or a replica) is given."""

    read_only: tuple[str, ...]
    """Host paths exposed read-only at the same path (model folder, interpreter, packages)."""
    read_write: tuple[str, ...] = ()
    """Host paths exposed read-write at the same path (an OSCAR service's mount and volume)."""
    cache: str | None = None
    """Host path of the deployment's cache folder, exposed read-write at :data:`SANDBOX_CACHE`."""
    socket: str | None = None
    """Host path of the gateway's Unix socket, exposed at :data:`SANDBOX_SOCKET`."""
    identity: Identity | None = None
    """Switch to this uid/gid inside (the platform runs as root); None: keep ours, in a user
    namespace (the platform is an ordinary user and cannot hand out identities)."""
    network: bool = True
    """False: a network namespace with only a loopback of its own (``network: none``)."""
    chdir: str = "/"
    devices: tuple[str, ...] = ()
    """Device nodes passed through (GPUs)."""
    results: str | None = None
    """Host path of a training's own folder, exposed read-write at :data:`SANDBOX_RESULTS`."""


def identity_for(deployment: str, taken: Mapping[int, str]) -> Identity:
    """A stable uid for ``deployment``: a hash of its name, probing past uids held by others."""
    slot = zlib.crc32(deployment.encode()) % UID_SPAN
    for step in range(UID_SPAN):
        uid = UID_BASE + (slot + step) % UID_SPAN
        owner = taken.get(uid)
        if owner is None or owner == deployment:
            return Identity(uid, uid)
    raise RuntimeError("no replica identity left")  # 65,536 live deployments on one node


def overlaps(path: str, forbidden: Iterable[str]) -> str | None:
    """The forbidden path that ``path`` is inside of or contains, if any."""
    p = PurePosixPath(path)
    for f in forbidden:
        q = PurePosixPath(f)
        if p == q or q in p.parents or p in q.parents:
            return f
    return None


def sandbox_env(
    platform_env: Mapping[str, str], *extra: Mapping[str, str], tmp: str = "/tmp"
) -> dict[str, str]:
    """A replica's environment: a fixed base, a few locale variables, then ``extra`` in order.

    Nothing else of the platform's own environment (cloud credentials, tokens, paths) reaches
    a model.
    """
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": tmp,
        "TMPDIR": tmp,
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update({k: platform_env[k] for k in SAFE_ENV if k in platform_env})
    for more in extra:
        env.update(more)
    return env


def bwrap_argv(
    conf: Confinement,
    command: list[str],
    *,
    bwrap: str = "bwrap",
    setpriv: str = "setpriv",
    as_root: bool,
    system: Iterable[tuple[str, str | None]] = (("/usr", None),),
) -> list[str]:
    """The bubblewrap command line running ``command`` confined by ``conf``.

    ``as_root``: the platform runs as root, so bwrap mounts with real privileges and ``setpriv``
    drops to ``conf.identity`` (all capabilities gone, no new privileges) before anything of the
    model's runs, not even an interpreter start-up hook. Otherwise bwrap builds a user namespace.
    ``system``: :data:`SYSTEM_PATHS` present on this host, each with its symlink target if it is
    one (``/bin -> usr/bin`` on a merged-/usr system).
    """
    argv = [bwrap, "--die-with-parent", "--new-session"]
    argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not as_root:
        argv += ["--unshare-user"]
    if not conf.network:
        argv += ["--unshare-net"]
    for path, target in system:
        argv += ["--ro-bind", path, path] if target is None else ["--symlink", target, path]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--perms", "1777", "--tmpfs", "/tmp", "--perms", "1777", "--tmpfs", "/dev/shm"]
    for dev in conf.devices:
        argv += ["--dev-bind", dev, dev]
    binds = [("--ro-bind", p) for p in conf.read_only] + [("--bind", p) for p in conf.read_write]
    targets = [p for _, p in binds] + [SANDBOX_SOCKET, SANDBOX_CACHE, SANDBOX_RESULTS]
    # bwrap makes missing parents 0700 root; a replica's uid must be able to walk through them.
    for parent in _parents(targets, covered=[p for p, _ in system] + targets):
        argv += ["--perms", "0755", "--dir", parent]
    for flag, path in sorted(binds, key=lambda b: b[1].count("/")):
        argv += [flag, path, path]
    if conf.cache is not None:
        argv += ["--bind", conf.cache, SANDBOX_CACHE]
    if conf.socket is not None:
        argv += ["--bind", conf.socket, SANDBOX_SOCKET]
    if conf.results is not None:
        argv += ["--bind", conf.results, SANDBOX_RESULTS]
    # The environment is the process's own (see :func:`sandbox_env`), never on the command line,
    # where every user of the host could read it.
    argv += ["--chdir", conf.chdir, "--"]
    if as_root and conf.identity is not None:
        ident = conf.identity
        argv += [
            setpriv,
            f"--reuid={ident.uid}",
            f"--regid={ident.gid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]
    return argv + command


def _parents(paths: Iterable[str], covered: list[str]) -> list[str]:
    """Every ancestor of ``paths`` that nothing in ``covered`` provides, shallowest first."""
    roots = [PurePosixPath(c) for c in covered]
    found: set[PurePosixPath] = set()
    for raw in paths:
        for parent in PurePosixPath(raw).parents:
            if str(parent) in ("/", "/tmp", "/dev", "/proc"):
                continue
            if any(parent == r or r in parent.parents for r in roots):
                continue
            found.add(parent)
    return [str(p) for p in sorted(found, key=lambda p: (len(p.parts), str(p)))]
