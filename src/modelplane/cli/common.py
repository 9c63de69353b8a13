"""What every command module shares: the consoles, the --url/--token options, and the wrapper
that turns platform errors into a message and a next step.

Command modules import from here, never from :mod:`modelplane.cli.main`, so the package has no
import cycle: ``main`` builds the one ``typer`` app and mounts each module's commands on it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from modelplane.client import Client
from modelplane.errors import ModelplaneError

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

UrlOpt = Annotated[
    str | None, typer.Option("--url", envvar="MODELPLANE_URL", help="platform address")
]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="MODELPLANE_TOKEN", help="API token", show_default=False),
]


def friendly(fn: F) -> F:
    """Turn platform errors into a message and a next step, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ModelplaneError as exc:
            err.print(f"[bold red]error:[/] {escape(exc.message)}")
            if exc.hint:
                err.print(f"[yellow]next:[/] {escape(exc.hint)}")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def client_for(url: str | None, token: str | None) -> Client:
    return Client(url=url, token=token)
