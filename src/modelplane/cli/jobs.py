"""CLI commands for asynchronous predictions: upload, jobs, download."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from modelplane.cli.common import TokenOpt, UrlOpt, client_for, friendly, out
from modelplane.errors import InvalidInput
from modelplane.storage import validate_key

app = typer.Typer()



@app.command()
@friendly
def upload(
    name: str,
    files: Annotated[list[Path], typer.Argument(help="files to upload; each becomes a job")],
    prefix: Annotated[str, typer.Option(help="key prefix in the input bucket")] = "",
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Upload files to a deployment's input bucket: each becomes an asynchronous job."""
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise InvalidInput(f"no such file: {', '.join(missing)}")
    with client_for(url, token) as client:
        jobs = client.upload(name, list(files), prefix=prefix)
    for job in jobs:
        out.print(f"job [bold]{job['id']}[/] queued for {job['input']['key']}")
    out.print(f"follow them with `modelplane jobs {name}`")


@app.command()
@friendly
def jobs(
    name: str,
    state: Annotated[str | None, typer.Option(help="queued, running, succeeded or failed")] = None,
    limit: Annotated[int, typer.Option(help="rows to show")] = 100,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """List a deployment's jobs with their state, timings and errors."""
    with client_for(url, token) as client:
        data = client.jobs(name, state=state, limit=limit)
    table = Table("JOB", "STATE", "INPUT", "OUTPUT", "TRIES", "SECONDS", "ERROR")
    for j in data["jobs"]:
        table.add_row(
            j["id"],
            j["state"],
            j["input"]["key"],
            j["output"]["key"] or "-",
            f"{j['attempts']}/{j['max_attempts']}",
            "-" if j["duration_seconds"] is None else f"{j['duration_seconds']:.3f}",
            (j["error"] or "")[:80],
        )
    counts = ", ".join(f"{k} {v}" for k, v in sorted(data["counts"].items())) or "no jobs"
    out.print(table if data["jobs"] else "no jobs yet: `modelplane upload NAME FILE…`")
    out.print(counts)


@app.command()
@friendly
def download(
    name: str,
    target: Annotated[str | None, typer.Argument(help="a job id (omit with --all)")] = None,
    directory: Annotated[Path, typer.Argument(help="where results go")] = Path("."),
    all_: Annotated[bool, typer.Option("--all", help="every succeeded job")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Fetch job results into a folder, under their output keys."""
    if all_ and target is not None and directory == Path("."):
        directory, target = Path(target), None
    if not all_ and target is None:
        raise InvalidInput("give a job id, or --all")
    with client_for(url, token) as client:
        if all_:
            ids, offset = [], 0
            while True:
                page = client.jobs(name, state="succeeded", limit=1000, offset=offset)["jobs"]
                ids += [j["id"] for j in page]
                offset += len(page)
                if len(page) < 1000:
                    break
        else:
            ids = [str(target)]
        for job_id in ids:
            data, _ctype, key = client.job_result(name, job_id)
            validate_key(key)  # the key comes from the server; never write outside directory
            path = directory / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            out.print(f"{job_id} -> {path}")
