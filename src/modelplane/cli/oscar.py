"""``modelplane import-fdl FILE.yaml``: create (or update) services from an OSCAR FDL file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelplane.cli.common import TokenOpt, UrlOpt, client_for, friendly, out
from modelplane.errors import AlreadyExists
from modelplane.oscar.fdl import check_together, read_fdl, service_from_dict

app = typer.Typer()


@app.command("import-fdl")
@friendly
def import_fdl(
    file: Annotated[Path, typer.Argument(help="an OSCAR FDL file (functions: oscar: …)")],
    update: Annotated[
        bool, typer.Option("--update", help="replace services that already exist")
    ] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Create the services of an OSCAR FDL file (scripts are read relative to it)."""
    services = read_fdl(file)
    # every definition is checked, alone and together, before any is created
    check_together([service_from_dict(service) for service in services])
    with client_for(url, token) as client:
        for service in services:
            name = service["name"]
            try:
                client._request("POST", "/system/services", json=service)
                out.print(f"service [bold]{name}[/] created")
            except AlreadyExists:
                if not update:
                    raise
                client._request("PUT", f"/system/services/{name}", json=service)
                out.print(f"service [bold]{name}[/] updated")
    out.print("run one with `oscar-python` or POST /run/<service>; jobs: POST /job/<service>")
