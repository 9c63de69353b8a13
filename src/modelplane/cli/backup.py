"""``modelplane backup FILE`` and ``modelplane restore FILE``: the store, copied consistently."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from modelplane.cli.common import friendly, out
from modelplane.settings import Settings, default_data_dir
from modelplane.store.backup import backup as backup_store
from modelplane.store.backup import restore as restore_store

app = typer.Typer()

DataDirOpt = Annotated[
    Path | None, typer.Option(help="the platform's data directory [default: ~/.modelplane]")
]
StoreUrlOpt = Annotated[
    str | None,
    typer.Option(help="SQLAlchemy URL of the store, if not SQLite in the data directory"),
]


def _db_url(data_dir: Path | None, store_url: str | None) -> str:
    return Settings(
        data_dir=(data_dir or default_data_dir()).expanduser(), store_url=store_url
    ).db_url


def _bar(what: str) -> Progress:
    return Progress(
        TextColumn(what), BarColumn(), TaskProgressColumn(), console=out, transient=True
    )


@app.command()
@friendly
def backup(
    file: Annotated[Path, typer.Argument(help="where to write the backup (must not exist)")],
    data_dir: DataDirOpt = None,
    store_url: StoreUrlOpt = None,
) -> None:
    """Back up the store (deployments, users, tokens, jobs), online: the platform may run."""
    with _bar("backing up") as bar:
        task = bar.add_task("store", total=None)
        backup_store(
            _db_url(data_dir, store_url),
            file,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    out.print(f"store backed up to [cyan]{file}[/] ({file.stat().st_size:,} bytes)")
    out.print("restore it with: modelplane restore FILE --data-dir NEW_DIR")


@app.command()
@friendly
def restore(
    file: Annotated[Path, typer.Argument(help="a file written by `modelplane backup`")],
    data_dir: DataDirOpt = None,
    store_url: StoreUrlOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="replace an existing store (stop the platform first)")
    ] = False,
) -> None:
    """Restore the store from a backup; start the platform on that data directory afterwards."""
    with _bar("restoring") as bar:
        task = bar.add_task("store", total=None)
        restore_store(
            file,
            _db_url(data_dir, store_url),
            force=force,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    where = store_url or str((data_dir or default_data_dir()).expanduser())
    out.print(f"store restored into [cyan]{where}[/]; now run: modelplane up --data-dir …")
