"""CLI commands for server-side batch runs: ``batch`` (submit and follow) and ``batches …``."""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from modelplane.cli.common import TokenOpt, UrlOpt, client_for, err, friendly, out
from modelplane.client import Client
from modelplane.errors import Forbidden, InvalidInput
from modelplane.storage import validate_key
from modelplane.storage.sides import LocalSide

app = typer.Typer()
batches_app = typer.Typer(help="Server-side batch runs: list, show, cancel, retry.",
                          no_args_is_help=True)
app.add_typer(batches_app, name="batches")

_FINISHED = ("succeeded", "failed", "cancelled")
_TRANSFER_THREADS = 8


def _is_local_folder(text: str) -> bool:
    return text.startswith((".", "/", "~")) or Path(text).expanduser().is_dir()


def _on_this_machine(client: Client) -> bool:
    host = urlsplit(client.url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


@app.command()
@friendly
def batch(
    target: Annotated[
        str, typer.Argument(help="a deployment, or a model folder for a one-off run")
    ],
    input_: Annotated[
        str, typer.Option("--input", help="a folder, bucket[/prefix] or s3://bucket/prefix")
    ],
    output: Annotated[
        str, typer.Option(help="a folder, bucket[/prefix] or s3://bucket/prefix")
    ],
    replicas: Annotated[
        int | None, typer.Option(help="with a model folder: dedicated replicas for the run")
    ] = None,
    gpu: Annotated[int | None, typer.Option(help="with a model folder: GPUs per replica")] = None,
    cpu: Annotated[
        float | None, typer.Option(help="with a model folder: cores per replica")
    ] = None,
    memory: Annotated[
        str | None, typer.Option(help="with a model folder: memory per replica, e.g. 2Gi")
    ] = None,
    concurrency: Annotated[int | None, typer.Option(help="inputs in flight at once")] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="start the run and return; follow it later")
    ] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Predict over a whole dataset on the platform; it resumes by itself after a restart.

    With a model folder, a dedicated deployment (``--replicas``, ``--gpu``) is made for the run
    and removed after it, and the replica-seconds it held are reported. Local folders are read
    and written by the platform in place when it runs on this machine, and uploaded (and the
    results downloaded) otherwise."""
    body: dict[str, Any] = {}
    folder = Path(target).expanduser()
    if folder.is_dir():
        body["model"] = {"path": str(folder.resolve())}
        resources = {"gpu": gpu, "cpu": cpu, "memory": memory}
        body["resources"] = {k: v for k, v in resources.items() if v is not None} or None
        body["replicas"] = replicas
    else:
        if replicas is not None or gpu is not None or cpu is not None or memory is not None:
            raise InvalidInput(
                f"{target!r} is a deployment: --replicas and resources go with a model folder"
            )
        body["deployment"] = target
    if concurrency is not None:
        body["concurrency"] = concurrency
    with client_for(url, token) as client:
        local_in = _is_local_folder(input_)
        local_out = _is_local_folder(output)
        if local_in and not Path(input_).expanduser().is_dir():
            raise InvalidInput(f"--input: {input_} is not a folder")
        in_place = _on_this_machine(client)
        download_to: Path | None = None
        run = None
        if in_place:
            body["input"] = str(Path(input_).expanduser().resolve()) if local_in else input_
            body["output"] = str(Path(output).expanduser().resolve()) if local_out else output
            try:
                run = client.start_batch(body)
            except Forbidden:
                in_place = False  # not an admin: the platform may not touch our folders
        if run is None:
            tag = secrets.token_hex(3)
            body["input"] = _upload(client, Path(input_), f"batch-in-{tag}") if local_in else input_
            if local_out:
                download_to = Path(output).expanduser()
                body["output"] = f"batch-out-{tag}"
            else:
                body["output"] = output
            run = client.start_batch(body)
        out.print(f"batch run [bold]{run['id']}[/] on {run['deployment']}")
        if detach:
            out.print(f"follow it with `modelplane batches show {run['id']}`")
            return
        run = _follow(client, run["id"])
        if download_to is not None:
            _download(client, str(run["output"]).removeprefix("bucket://"), download_to)
    _report(run)
    if run["state"] != "succeeded":
        raise typer.Exit(1)


def _upload(client: Client, folder: Path, bucket: str) -> str:
    names = LocalSide(folder).names()
    client.create_bucket(bucket)
    with _bar(f"uploading to {bucket}") as bar, ThreadPoolExecutor(_TRANSFER_THREADS) as pool:
        task = bar.add_task("upload", total=len(names))

        def put(name: str) -> None:
            client.put_object(bucket, name, (folder / name).read_bytes())
            bar.advance(task)

        list(pool.map(put, names))
    return f"{bucket}/"


def _download(client: Client, where: str, folder: Path) -> None:
    bucket, _, prefix = where.partition("/")
    keys = [o["key"] for o in client.objects(bucket, prefix)]
    with _bar(f"downloading into {folder}") as bar, ThreadPoolExecutor(_TRANSFER_THREADS) as pool:
        task = bar.add_task("download", total=len(keys))

        def get(key: str) -> None:
            name = key[len(prefix) :].lstrip("/")
            validate_key(name)  # the key comes from the server; never write outside folder
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(client.get_object(bucket, key))
            bar.advance(task)

        list(pool.map(get, keys))


def _bar(description: str) -> Progress:
    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=out,
    )


def _follow(client: Client, batch_id: str, interval: float = 0.5) -> dict[str, Any]:
    try:
        with _bar("predicting") as bar:
            task = bar.add_task("batch", total=None)
            while True:
                asked = time.monotonic()
                # held by the platform until the run ends or `interval` passed: the end is
                # seen at once, progress every `interval`
                run = client.batch(batch_id, wait=interval)
                bar.update(
                    task, completed=run["done"] + run["failed"], total=run["total"] or None
                )
                if run["state"] in _FINISHED:
                    return run
                rest = interval - (time.monotonic() - asked)
                if rest > 0:  # a platform that does not hold answers: a poll, not a busy loop
                    time.sleep(rest)
    except KeyboardInterrupt:
        err.print(
            f"the run goes on on the platform: `modelplane batches show {batch_id}`; "
            f"stop it with `modelplane batches cancel {batch_id}`"
        )
        raise typer.Exit(130) from None


def _report(run: dict[str, Any]) -> None:
    colour = {"succeeded": "green", "failed": "red"}.get(run["state"], "yellow")
    line = (
        f"[{colour}]{run['state']}[/]: {run['done']} of {run['total']} inputs have results "
        f"({run['skipped']} already had one), {run['failed']} failed"
    )
    if run.get("rate_per_second"):
        line += f", {run['rate_per_second']:,.0f} inputs/s"
    out.print(line)
    if run["ephemeral"]:
        out.print(
            f"its deployment {run['deployment']} held {run['replica_seconds']:.1f} "
            f"replica-seconds ({run['gpu_seconds']:.1f} GPU-seconds) and is removed"
        )
    if run.get("error"):
        err.print(f"[bold red]error:[/] {run['error']}")
    for failure in run.get("failures", [])[:10]:
        err.print(f"  {failure['name']}: {failure['error']}")
    if run["failed"]:
        err.print(f"[yellow]next:[/] fix the inputs, then `modelplane batches retry {run['id']}`")


@batches_app.command("ls")
@friendly
def list_(url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Batch runs, newest first."""
    with client_for(url, token) as client:
        runs = client.batches()
    table = Table("RUN", "STATE", "DEPLOYMENT", "DONE", "FAILED", "TOTAL", "INPUT", "OUTPUT")
    for r in runs:
        table.add_row(r["id"], r["state"], r["deployment"], str(r["done"]), str(r["failed"]),
                      str(r["total"]), r["input"], r["output"])
    out.print(table if runs else "no batch runs yet: `modelplane batch DEPLOYMENT --input …`")


@batches_app.command("show")
@friendly
def show(batch_id: str, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """A run's progress, rate, time left and failed inputs."""
    with client_for(url, token) as client:
        run = client.batch(batch_id)
    _report(run)
    if run.get("eta_seconds") is not None:
        out.print(f"about {run['eta_seconds']:.0f} s left")


@batches_app.command("cancel")
@friendly
def cancel(batch_id: str, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Stop a run: inputs in flight finish, no new ones start."""
    with client_for(url, token) as client:
        run = client.cancel_batch(batch_id)
    out.print(f"batch run {batch_id} is {run['state']}")


@batches_app.command("retry")
@friendly
def retry(batch_id: str, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Run a finished batch again for the inputs that failed."""
    with client_for(url, token) as client:
        run = client.retry_batch(batch_id)
        out.print(f"batch run {batch_id} is {run['state']} again")
        _report(_follow(client, batch_id))
