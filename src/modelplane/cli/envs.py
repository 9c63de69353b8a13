"""``modelplane envs ls|prune``: the per-model Python environments the platform has built."""

from __future__ import annotations

import time

import typer
from rich.table import Table

from modelplane.cli.common import TokenOpt, UrlOpt, client_for, friendly, out

app = typer.Typer()
envs_app = typer.Typer(help="Per-model Python environments (built from a model's requirements).")
app.add_typer(envs_app, name="envs")


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


@envs_app.command("ls")
@friendly
def ls(url: UrlOpt = None, token: TokenOpt = None) -> None:
    """List environments: key, size, what they were built from, who uses them."""
    with client_for(url, token) as client:
        rows = client.envs()
    if not rows:
        out.print("no model environments: models without requirements run on the fast path")
        return
    table = Table("KEY", "SIZE", "TOOL", "BUILT", "SECONDS", "FROM", "USED BY")
    for r in rows:
        built = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(r.get("built_at", 0))))
        table.add_row(
            str(r["key"]),
            _mib(int(r.get("bytes", 0))),
            str(r.get("tool", "")),
            built,
            str(r.get("seconds", "")),
            ", ".join(r.get("sources", [])),
            ", ".join(r.get("used_by", [])) or "[dim]unused[/]",
        )
    out.print(table)


@envs_app.command("prune")
@friendly
def prune(url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Remove the environments no deployment uses (they are rebuilt if needed again)."""
    with client_for(url, token) as client:
        result = client.prune_envs()
    removed = result.get("removed", [])
    if not removed:
        out.print("nothing to prune: every environment is in use")
        return
    out.print(
        f"removed {len(removed)} environment(s), freed {_mib(int(result.get('freed_bytes', 0)))}: "
        + ", ".join(removed)
    )
