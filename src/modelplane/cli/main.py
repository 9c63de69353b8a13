"""The ``modelplane`` command: thin typer commands over :class:`modelplane.client.Client`."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.table import Table

from modelplane.cli import advise, backup, batches, envs, export, jobs, oscar, users
from modelplane.cli.common import TokenOpt, UrlOpt, client_for, friendly, out
from modelplane.client import Client
from modelplane.errors import InvalidInput, InvalidSpec, ModelplaneError
from modelplane.settings import DEFAULT_HOST, DEFAULT_PORT, Settings, default_data_dir
from modelplane.spec import DeploymentSpec, load_spec, parse_memory

app = typer.Typer(
    name="modelplane",
    help="Serve a trained model the way its traffic needs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Each command module owns a typer app of its own; mounted without a name, its commands sit at the
# top level (``modelplane upload``) or as the groups it declares (``modelplane users add``).
for _module in (advise, backup, batches, export, jobs, oscar, users, envs):
    app.add_typer(_module.app)


# -- the platform ---------------------------------------------------------------------------------
@app.command()
@friendly
def up(
    host: Annotated[str, typer.Option(help="address to listen on")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="port to listen on")] = DEFAULT_PORT,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="where state, logs and buckets live [default: ~/.modelplane]"),
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="single-user local mode: no token, loopback only")
    ] = False,
    examples: Annotated[
        Path | None,
        typer.Option(
            help="deploy every <dir>/*/deployment.yaml found here that is not deployed yet"
        ),
    ] = None,
    max_body: Annotated[str, typer.Option(help="largest request body, e.g. 16Mi")] = "16Mi",
    store_url: Annotated[
        str | None,
        typer.Option(
            "--store",
            "--store-url",
            help="where state lives: postgresql://user:pass@host/db, or any SQLAlchemy URL "
            "[default: SQLite in the data directory]",
        ),
    ] = None,
    request_timeout: Annotated[
        float, typer.Option(help="seconds a replica may take to answer before a 504")
    ] = 120.0,
    queue_limit: Annotated[
        int, typer.Option(help="requests that may wait for a replica per deployment")
    ] = 1000,
    queue_timeout: Annotated[
        float, typer.Option(help="seconds a request may wait for a replica before a 503")
    ] = 60.0,
    stable_window: Annotated[
        float, typer.Option(help="seconds of load the autoscaler averages before scaling down")
    ] = 30.0,
    storage: Annotated[
        str, typer.Option(help="where buckets live: local (data directory) or s3")
    ] = "local",
    s3_endpoint: Annotated[
        str | None, typer.Option(help="S3 or MinIO endpoint URL (default: AWS)")
    ] = None,
    s3_region: Annotated[str | None, typer.Option(help="S3 region")] = None,
    watch_interval: Annotated[
        float, typer.Option(help="seconds between scans of input buckets for new objects")
    ] = 2.0,
    cpus: Annotated[
        float | None, typer.Option(help="reservable cores [default: cores x 8, time-shared]")
    ] = None,
    node_memory: Annotated[
        str | None, typer.Option(help="reservable memory, e.g. 16Gi [default: the machine's]")
    ] = None,
    gpus: Annotated[
        str | None,
        typer.Option(help="GPUs to give out: a count (2) or devices (0,2) [default: nvidia-smi]"),
    ] = None,
    rate_limit: Annotated[
        float | None, typer.Option(help="requests per second per token [default: no limit]")
    ] = None,
    max_queued_jobs: Annotated[
        int | None, typer.Option(help="jobs that may wait per deployment [default: no limit]")
    ] = None,
    advertise_host: Annotated[
        str | None,
        typer.Option(
            help="address other platform processes and cluster nodes reach this one at "
            "[default: --host, or 127.0.0.1 on 0.0.0.0]"
        ),
    ] = None,
    replica_port: Annotated[
        int,
        typer.Option(help="TCP port for remote replicas and relays (shared store) [default: free]"),
    ] = 0,
    lease_ttl: Annotated[
        float, typer.Option(help="seconds before another process takes over a dead leader")
    ] = 5.0,
    backend: Annotated[
        str, typer.Option(help="where replicas run: local (this machine) or ray (a Ray cluster)")
    ] = "local",
    ray_address: Annotated[
        str, typer.Option(help="the Ray cluster with --backend ray: auto or HOST:PORT")
    ] = "auto",
    job_lease: Annotated[
        float, typer.Option(help="seconds a job stays claimed by a runner that stops heartbeating")
    ] = 60.0,
    sandbox: Annotated[
        bool,
        typer.Option(
            help="confine replicas with bubblewrap (own uid, only their model folder visible); "
            "--no-sandbox runs them as the platform itself",
        ),
    ] = True,
) -> None:
    """Start the platform: control plane, gateway and replicas, in this terminal."""
    if local and host not in ("127.0.0.1", "localhost", "::1"):
        raise InvalidInput("--local binds to loopback only; drop --host or use 127.0.0.1")
    if backend not in ("local", "ray"):
        raise InvalidInput(f"--backend must be local or ray, not {backend!r}")
    if backend == "ray" and importlib.util.find_spec("ray") is None:
        raise InvalidInput(
            "--backend ray needs Ray on this machine",
            hint='install it with `pip install "modelplane[ray]"`, then start or join a cluster '
            "with `ray start`",
        )
    if storage not in ("local", "s3"):
        raise InvalidInput(f"--storage must be local or s3, not {storage!r}")
    settings = Settings(
        data_dir=(data_dir or default_data_dir()).expanduser().resolve(),
        host=host,
        port=port,
        local=local,
        max_body=parse_memory(max_body),
        store_url=store_url,
        request_timeout=request_timeout,
        queue_limit=queue_limit,
        queue_timeout=queue_timeout,
        stable_window=stable_window,
        storage=storage,
        s3_endpoint=s3_endpoint,
        s3_region=s3_region,
        watch_interval=watch_interval,
        cpus=cpus,
        node_memory=parse_memory(node_memory) if node_memory else None,
        gpus=_gpus(gpus),
        rate_limit=rate_limit,
        max_queued_jobs=max_queued_jobs,
        advertise_host=advertise_host,
        replica_port=replica_port,
        lease_ttl=lease_ttl,
        job_lease=job_lease,
        sandbox=sandbox,
        backend=backend,
        ray_address=ray_address,
    )
    try:
        import uvloop

        uvloop.run(_serve(settings, examples))
    except ImportError:  # pragma: no cover
        asyncio.run(_serve(settings, examples))


def _gpus(value: str | None) -> tuple[int, ...] | None:
    from modelplane.resources.inventory import parse_gpus

    if value is None:
        return None
    try:
        return parse_gpus(value)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


async def _serve(settings: Settings, examples: Path | None) -> None:
    from modelplane.controlplane.platform import Platform

    platform = Platform(settings)
    await platform.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    created = []
    if examples is not None:
        for spec_file in sorted(examples.expanduser().glob("*/deployment.yaml")):
            spec = load_spec(spec_file)
            if await platform.ensure_deployment(spec):
                created.append(spec.name)
    lines = [
        f"[bold]modelplane[/] is up at [cyan]{platform.url}[/]  (API docs: {platform.url}/docs)"
    ]
    if settings.local:
        lines.append("single-user local mode: no token needed; listening on loopback only")
    else:
        lines.append(f"access token: [green]{platform.admin_token}[/]")
        lines.append(f"  (kept in {settings.token_file}; the CLI on this machine finds it)")
        lines.append(
            f"  export MODELPLANE_URL={platform.url} MODELPLANE_TOKEN={platform.admin_token}"
        )
    book = platform.reconciler.reservations
    if book is not None:
        inv = book.inventory
        gpus = ", ".join(str(g.index) for g in inv.gpus) or "none"
        lines.append(
            f"node: {inv.cpu:g} reservable cores, {inv.memory / 2**30:.1f} GiB memory, GPUs: {gpus}"
        )
    if platform.sandbox_note:
        lines.append(f"[yellow]warning:[/] {platform.sandbox_note}")
    if settings.rate_limit:
        lines.append(f"rate limit: {settings.rate_limit:g} requests per second per token")
    if created:
        lines.append(f"deployed examples: {', '.join(created)}")
    lines.append("try:  modelplane ls   ·   modelplane predict echo --json '{\"hello\": 1}'")
    lines.append("stop with Ctrl-C; deployments come back at the next `modelplane up`")
    out.print(Panel("\n".join(lines), expand=False))
    # What start-up made (modules, the app, the store's metadata: most of the heap) lives as long
    # as the platform: out of the collector's sight, a full collection no longer walks it on the
    # hot paths (8 % of the CPU per async job, measured with bench/jobs.py --base).
    gc.freeze()
    await stop.wait()
    out.print("stopping replicas…")
    await platform.stop()


# -- deployments ----------------------------------------------------------------------------------
def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return slug[:63] or "model"


def build_spec(target: Path, overrides: dict[str, Any]) -> DeploymentSpec:
    """A spec from a spec file or a model folder, with command-line overrides applied."""
    if target.is_file():
        base = load_spec(target).model_dump(mode="json")
    elif target.is_dir():
        from modelplane.model.loader import MANIFEST, read_manifest

        name = target.resolve().name
        if (target / MANIFEST).is_file():
            name = read_manifest(target).metadata.name
        base = {"name": _slug(name), "model": {"path": str(target.resolve())}}
    else:
        raise InvalidSpec(f"{target} is neither a spec file nor a model folder")
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, field = key.partition(".")
        if field:
            base.setdefault(section, {})[field] = value
        else:
            base[section] = value
    return DeploymentSpec.parse(base)


@app.command()
@friendly
def deploy(
    target: Annotated[Path, typer.Argument(help="a deployment spec (YAML/JSON) or a model folder")],
    name: Annotated[str | None, typer.Option(help="deployment name")] = None,
    mode: Annotated[str | None, typer.Option(help="serverless or dedicated")] = None,
    replicas: Annotated[int | None, typer.Option(help="replicas (dedicated)")] = None,
    cpu: Annotated[float | None, typer.Option(help="cores per replica")] = None,
    memory: Annotated[str | None, typer.Option(help="memory per replica, e.g. 512Mi")] = None,
    gpu: Annotated[int | None, typer.Option(help="GPUs per replica")] = None,
    loader: Annotated[
        str | None, typer.Option(help="auto, python, deepaas or oscar (default auto)")
    ] = None,
    entrypoint: Annotated[str | None, typer.Option(help="module or module:Class")] = None,
    update: Annotated[
        bool, typer.Option("--update", help="replace an existing deployment")
    ] = False,
    wait: Annotated[bool, typer.Option(help="wait until replicas are ready")] = True,
    timeout: Annotated[float, typer.Option(help="seconds to wait")] = 120.0,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Create (or with --update, replace) a deployment."""
    spec = build_spec(
        target,
        {
            "name": name,
            "mode": mode,
            "scale.replicas": replicas,
            "resources.cpu": cpu,
            "resources.memory": memory,
            "resources.gpu": gpu,
            "model.loader": loader,
            "model.entrypoint": entrypoint,
        },
    )
    with client_for(url, token) as client:
        client.deploy(spec, update=update)
        out.print(f"deployment [bold]{spec.name}[/] {'updated' if update else 'created'}")
        if wait:
            _wait_ready(client, spec.name, timeout)


def _wait_ready(client: Client, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with out.status(f"waiting for replicas of {name}…") as status:
        while True:
            st = client.get(name)["status"]
            env = st.get("environment") or {}
            if env.get("state") == "building":
                # the model's own environment: pip's (uv's) last line; no timeout while it runs
                deadline = time.monotonic() + timeout
                last = (env.get("last_lines") or ["resolving requirements"])[-1]
                status.update(f"{name}: building its Python environment — {last[:120]}")
                time.sleep(0.2)
                continue
            if env.get("state") == "failed":
                raise ModelplaneError(
                    f"{name}: its Python environment could not be built: {env.get('error')}",
                    hint="fix the model's requirements, then `modelplane deploy … --update`",
                )
            status.update(
                f"{name}: {st['ready']}/{st['desired']} replicas ready ({st['starting']} starting)"
            )
            if st["desired"] and st["ready"] >= st["desired"]:
                built = f" (environment {env['key']})" if env.get("key") else ""
                out.print(f"[green]ready[/]: {st['ready']}/{st['desired']} replicas{built}")
                return
            if st["desired"] == 0:
                out.print("ready: scaled to zero; the first request starts a replica")
                return
            if st.get("last_error") and st["state"] == "failing":
                raise ModelplaneError(
                    f"{name} is failing: {st['last_error']}",
                    hint=f"see `modelplane logs {name}`",
                )
            if time.monotonic() > deadline:
                raise ModelplaneError(
                    f"{name} not ready after {timeout:g} s",
                    hint=f"see `modelplane status {name}` and `modelplane logs {name}`",
                )
            time.sleep(0.2)


@app.command("ls")
@friendly
def list_(url: UrlOpt = None, token: TokenOpt = None) -> None:
    """List deployments."""
    with client_for(url, token) as client:
        rows = client.deployments()
    table = Table("NAME", "MODE", "READY", "STATE", "REQUESTS", "RESTARTS", "MODEL")
    for d in rows:
        st = d["status"]
        table.add_row(
            d["name"],
            d["spec"]["mode"],
            f"{st['ready']}/{st['desired']}",
            st["state"],
            str(st.get("requests", 0)),
            str(st["restarts"]),
            d["spec"]["model"]["path"],
        )
    out.print(table if rows else "no deployments yet: `modelplane deploy FOLDER`")


@app.command()
@friendly
def status(
    name: str,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="raw JSON")] = False,
) -> None:
    """Replicas, restarts, requests served, errors and recent events of a deployment."""
    with client_for(url, token) as client:
        d = client.get(name)
    if as_json:
        out.print_json(data=d)
        return
    st = d["status"]
    res = d["spec"]["resources"]
    head = [
        f"[bold]{d['name']}[/]  {d['spec']['mode']}  state: [bold]{st['state']}[/]",
        f"replicas ready {st['ready']}/{st['desired']} (starting {st['starting']}), "
        f"restarts {st['restarts']}, requests {st.get('requests', 0)}, "
        f"queued {st.get('queued', 0)}",
        f"resources per replica: cpu {res['cpu']}, memory {res['memory'] / 2**20:.0f} MiB, "
        f"gpu {res['gpu']}",
    ]
    env = st.get("environment")
    if env:
        head.append(f"environment {env['key']}: {env['state']}")
        if env["state"] != "ready":
            head.extend(f"  [dim]{line}[/]" for line in env.get("last_lines", [])[-3:])
    if st.get("last_error"):
        head.append(f"[red]last error[/] ({st['last_error_at']}): {st['last_error']}")
    out.print(Panel("\n".join(head), expand=False))
    if st["replicas"]:
        on_nodes = any(r.get("node") for r in st["replicas"])  # a cluster backend: where each runs
        columns = ["REPLICA", "STATE", "NODE" if on_nodes else "PID", "MEMORY", "SERVED"]
        table = Table(*columns, "IN FLIGHT", "LOAD S")
        for r in st["replicas"]:
            mem = f"{r['memory_bytes'] / 2**20:.0f} MiB" if r["memory_bytes"] else "-"
            node = f"{r['node']} ({str(r.get('node_id') or '')[:8]})" if r.get("node") else "-"
            table.add_row(
                r["id"],
                r["state"],
                node if on_nodes else str(r["pid"]),
                mem,
                str(r["served"]),
                str(r["in_flight"]),
                str(r["load_seconds"] or "-"),
            )
        out.print(table)
    for e in d.get("events", [])[-10:]:
        out.print(f"[dim]{e['at']}[/] {e['kind']:<12} {e['replica']} {e['message']}")


def _pairs(values: list[str], option: str, what: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{option} {value!r}: give {what}")
        pairs.append((key, rest))
    return pairs


def _missing_required(client: Client, name: str, given: set[str]) -> list[str]:
    """The model's required inputs (its input schema) that the command line does not give."""
    schema = ((client.get(name).get("status") or {}).get("model") or {}).get("input_schema")
    required = schema.get("required", []) if isinstance(schema, dict) else []
    return [r for r in required if r not in given]


@app.command()
@friendly
def predict(
    name: str,
    json_: Annotated[str | None, typer.Option("--json", help="JSON input")] = None,
    file: Annotated[
        list[str] | None,
        typer.Option(
            help="FIELD=PATH: upload a file as form field FIELD (repeatable); a bare "
            "PATH is the field named by --file-field"
        ),
    ] = None,
    field: Annotated[
        list[str] | None, typer.Option(help="NAME=VALUE: a form field (repeatable)")
    ] = None,
    file_field: Annotated[str, typer.Option(help="field name of a bare --file PATH")] = "image",
    output: Annotated[Path | None, typer.Option(help="write the raw result here")] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Run a prediction with JSON input, or with files and form fields."""
    files_, fields_ = file or [], field or []
    if (json_ is None) == (not files_ and not fields_):
        raise InvalidInput("give --json '…', or --file FIELD=PATH / --field NAME=VALUE")
    inputs = None
    if json_ is not None:
        try:
            inputs = json.loads(json_)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"--json is not valid JSON: {exc}") from None
    uploads: list[tuple[str, Path]] = []
    for value in files_:
        key, sep, where = value.partition("=")
        key, where = (
            (key, where) if sep and key and not Path(value).is_file() else (file_field, value)
        )
        path = Path(where).expanduser()
        if not path.is_file():
            raise InvalidInput(f"--file {value}: no such file {path}")
        uploads.append((key, path))
    pairs = _pairs(fields_, "--field", "NAME=VALUE")
    with client_for(url, token) as client:
        if json_ is None:
            missing = _missing_required(
                client, name, {k for k, _ in uploads} | {k for k, _ in pairs}
            )
            if missing:
                raise InvalidInput(
                    f"{name} requires {', '.join(missing)}",
                    hint="add "
                    + " ".join(f"--file {m}=PATH or --field {m}=VALUE" for m in missing),
                    missing=missing,
                )
        result = client.predict(name, inputs, files=list(uploads), fields=pairs)
    if output is not None:
        output.write_bytes(result.content)
        out.print(f"wrote {len(result.content)} bytes to {output}")
    elif result.is_json:
        out.print_json(result.content.decode())
    else:
        sys.stdout.buffer.write(result.content)


@app.command()
@friendly
def logs(
    name: str,
    tail: Annotated[int, typer.Option(help="lines to show")] = 200,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new lines")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """The model's own stdout/stderr and the platform's notes about its replicas."""
    with client_for(url, token) as client:
        lines = client.logs(name, tail)
        for line in lines:
            print(line)
        while follow:
            time.sleep(1.0)
            fresh = client.logs(name, 1000)
            if lines and lines[-1] in fresh:
                fresh = fresh[len(fresh) - fresh[::-1].index(lines[-1]) :]
            for line in fresh:
                print(line, flush=True)
            lines = lines + fresh if fresh else lines


@app.command()
@friendly
def rm(name: str, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Remove a deployment and stop its replicas."""
    with client_for(url, token) as client:
        client.delete(name)
    out.print(f"removed [bold]{name}[/]")


# -- local ----------------------------------------------------------------------------------------
@app.command()
@friendly
def run(
    folder: Annotated[Path, typer.Argument(help="the model folder")],
    host: Annotated[str, typer.Option()] = DEFAULT_HOST,
    port: Annotated[int, typer.Option()] = 5000,
    entrypoint: Annotated[str | None, typer.Option(help="module:Class override")] = None,
    loader: Annotated[str, typer.Option(help="auto, python, deepaas or oscar")] = "auto",
    name: Annotated[
        str | None,
        typer.Option(help="the name it answers to (Open Inference Protocol model name)"),
    ] = None,
    installed: Annotated[
        bool,
        typer.Option(
            "--installed",
            help="the folder's requirements are installed in this Python already (as in an "
            "exported image): serve with it, build no environment",
        ),
    ] = False,
) -> None:
    """Serve one model in this process, without the platform: for trying and debugging.

    A folder with requirements (requirements.txt, or a package) runs in its own environment,
    the same one the platform builds for it, unless --installed says this Python is that."""
    if not installed and _run_in_environment(
        folder.resolve(), host, port, entrypoint, loader, name
    ):
        return
    try:
        import uvloop

        uvloop.run(_run_local(folder, host, port, entrypoint, loader, name))
    except ImportError:  # pragma: no cover
        asyncio.run(_run_local(folder, host, port, entrypoint, loader, name))


async def _run_local(
    folder: Path, host: str, port: int, entrypoint: str | None, loader: str, name: str | None
) -> None:
    from modelplane.gateway.local import serve_local

    await serve_local(folder, host, port, entrypoint, loader, name, _say_started)


def _say_started(line: str) -> None:
    out.print(line, highlight=False, markup=False)


def _run_in_environment(
    folder: Path, host: str, port: int, entrypoint: str | None, loader: str, name: str | None
) -> bool:
    """A folder with requirements runs in its own environment (built first); False: it has none."""
    from modelplane.envs import EnvBuilder, EnvManager
    from modelplane.envs.build import find_uv

    envs = EnvManager(EnvBuilder(default_data_dir() / "envs", uv=find_uv()))
    if envs.source(folder) is None:
        return False

    async def build() -> str | None:
        task = envs.ensure(folder)
        assert task is not None
        state = envs.state(folder)
        with out.status(f"building the environment of {folder.name}…") as status:
            while not task.done():
                if state is not None and state.lines:
                    status.update(f"building the environment of {folder.name}: {state.lines[-1]}")
                await asyncio.sleep(0.1)
        return await envs.python_for(folder)

    python = asyncio.run(build())
    assert python is not None
    args = [python, "-m", "modelplane.gateway.local", str(folder), "--host", host]
    args += ["--port", str(port), "--loader", loader]
    if entrypoint:
        args += ["--entrypoint", entrypoint]
    if name:
        args += ["--name", name]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["VIRTUAL_ENV"] = str(Path(python).parent.parent)
    sys.stdout.flush()
    os.execve(python, args, env)  # the model's interpreter from here on
    return True  # pragma: no cover - execve does not return


def main() -> None:
    app()


if __name__ == "__main__":
    main()
