"""CLI commands for users, API tokens and the node's resources: ``users``, ``tokens``,
``resources``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from modelplane.cli.common import TokenOpt, UrlOpt, client_for, friendly, out
from modelplane.resources.amounts import fmt_bytes
from modelplane.spec import parse_memory

users_app = typer.Typer(help="Users and their quotas (admins).", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)
app = typer.Typer()
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")

QuotaCpu = Annotated[float | None, typer.Option("--quota-cpu", help="cores")]
QuotaMemory = Annotated[str | None, typer.Option("--quota-memory", help="e.g. 8Gi")]
QuotaGpu = Annotated[int | None, typer.Option("--quota-gpu", help="GPUs")]
QuotaDeployments = Annotated[int | None, typer.Option("--quota-deployments", help="deployments")]


def _quotas(
    cpu: float | None, memory: str | None, gpu: int | None, deployments: int | None
) -> dict[str, Any]:
    found = {
        "cpu": cpu,
        "memory": parse_memory(memory) if memory is not None else None,
        "gpu": gpu,
        "deployments": deployments,
    }
    return {k: v for k, v in found.items() if v is not None}


def _show_quotas(quotas: dict[str, Any]) -> str:
    if not quotas:
        return "unlimited"
    parts = []
    for key, value in quotas.items():
        parts.append(f"{key} {fmt_bytes(value) if key == 'memory' else value}")
    return ", ".join(parts)


def _show_usage(usage: dict[str, Any]) -> str:
    return f"cpu {usage['cpu']}, memory {fmt_bytes(usage['memory'])}, gpu {usage['gpu']}"


# -- users ----------------------------------------------------------------------------------------
@users_app.command("add")
@friendly
def users_add(
    name: str,
    admin: Annotated[bool, typer.Option("--admin", help="may manage everyone")] = False,
    quota_cpu: QuotaCpu = None,
    quota_memory: QuotaMemory = None,
    quota_gpu: QuotaGpu = None,
    quota_deployments: QuotaDeployments = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Add a user, with optional quotas (missing: unlimited). Then give them a token with
    `modelplane tokens create --user NAME`."""
    quotas = _quotas(quota_cpu, quota_memory, quota_gpu, quota_deployments)
    with client_for(url, token) as client:
        user = client.add_user(name, admin=admin, quotas=quotas)
    kind = "admin" if user["admin"] else "user"
    out.print(f"{kind} [bold]{user['name']}[/] added; quotas: {_show_quotas(user['quotas'])}")
    out.print(f"next: modelplane tokens create --user {user['name']}")


@users_app.command("quota")
@friendly
def users_quota(
    name: str,
    quota_cpu: QuotaCpu = None,
    quota_memory: QuotaMemory = None,
    quota_gpu: QuotaGpu = None,
    quota_deployments: QuotaDeployments = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Replace a user's quotas (the ones not given become unlimited)."""
    quotas = _quotas(quota_cpu, quota_memory, quota_gpu, quota_deployments)
    with client_for(url, token) as client:
        user = client.set_quotas(name, quotas)
    out.print(f"[bold]{user['name']}[/] quotas: {_show_quotas(user['quotas'])}")


@users_app.command("ls")
@friendly
def users_ls(url: UrlOpt = None, token: TokenOpt = None) -> None:
    """List users, their quotas and what their replicas hold now."""
    with client_for(url, token) as client:
        rows = client.users()
    table = Table("NAME", "ADMIN", "DEPLOYMENTS", "HOLDS", "QUOTAS")
    for u in rows:
        table.add_row(
            u["name"],
            "yes" if u["admin"] else "",
            str(u["deployments"]),
            _show_usage(u["usage"]),
            _show_quotas(u["quotas"]),
        )
    out.print(table)


@users_app.command("rm")
@friendly
def users_rm(name: str, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Remove a user and revoke their tokens (refused while they own deployments or buckets)."""
    with client_for(url, token) as client:
        client.remove_user(name)
    out.print(f"removed user [bold]{name}[/]")


# -- tokens ---------------------------------------------------------------------------------------
@tokens_app.command("create")
@friendly
def tokens_create(
    user: Annotated[str | None, typer.Option(help="whose token (admins; default: you)")] = None,
    name: Annotated[str, typer.Option(help="a label, e.g. 'laptop' or 'ci'")] = "",
    expires_in: Annotated[
        float | None, typer.Option("--expires-in", help="days until it stops working")
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option(help="an inference token: predictions with this deployment only"),
    ] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Create an API token. It is printed once; only its hash is kept."""
    with client_for(url, token) as client:
        if deployment is not None:
            made = client.deployment_token(deployment, name=name, expires_in_days=expires_in)
        else:
            made = client.create_token(user=user, name=name, expires_in_days=expires_in)
    scope = f"predictions with {made['deployment']} only" if made["deployment"] else "full API"
    out.print(f"token {made['id']} for [bold]{made['user']}[/] ({scope}):")
    print(made["token"])
    if made["expires_at"]:
        out.print(f"expires at {made['expires_at']}")
    out.print("[yellow]keep it now: it is not shown again[/]")


@tokens_app.command("ls")
@friendly
def tokens_ls(
    user: Annotated[str | None, typer.Option(help="one user's tokens (admins)")] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """List live tokens (never their secrets)."""
    with client_for(url, token) as client:
        rows = client.tokens(user)
    table = Table("ID", "USER", "NAME", "SCOPE", "CREATED", "EXPIRES")
    for t in rows:
        table.add_row(
            str(t["id"]),
            t["user"],
            t["name"],
            f"predict {t['deployment']}" if t["deployment"] else "all",
            t["created_at"][:19],
            (t["expires_at"] or "never")[:19],
        )
    out.print(table)


@tokens_app.command("revoke")
@friendly
def tokens_revoke(token_id: int, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Revoke a token; it is refused from the next request on."""
    with client_for(url, token) as client:
        client.revoke_token(token_id)
    out.print(f"revoked token {token_id}")


# -- the node -------------------------------------------------------------------------------------
@app.command()
@friendly
def resources(url: UrlOpt = None, token: TokenOpt = None) -> None:
    """The node's CPU, memory and GPUs, what is reserved, and by which deployments."""
    with client_for(url, token) as client:
        view = client.resources()
    inv = view["inventory"]
    gpus = ", ".join(f"{g['index']}:{g['name']}" for g in inv["gpus"]) or "none"
    out.print(
        f"node: cpu {inv['cpu']:g} ({inv['cores']} cores), memory {inv['memory_human']}, "
        f"gpus {gpus}  [dim]({inv['source']})[/]"
    )
    out.print(f"reserved: {_show_usage(view['reserved'])}")
    out.print(f"free:     {_show_usage(view['free'])}")
    table = Table("DEPLOYMENT", "OWNER", "REPLICA", "CPU", "MEMORY", "GPUS")
    for name, entry in view["deployments"].items():
        held = {**entry["replicas"], **entry.get("trainings", {})}  # a training: train-<uuid>
        for rid, r in held.items():
            table.add_row(
                name,
                entry["owner"],
                rid,
                str(r["cpu"]),
                fmt_bytes(r["memory"]),
                ",".join(str(i) for i in r["gpu_devices"]) or "-",
            )
    out.print(table)
