"""``modelplane export NAME|SPEC.yaml|MODEL_FOLDER --target T``: files that run the deployment
elsewhere (an image, Compose, Kubernetes, Knative, KServe, Nomad, OSCAR).

A spec file or a model folder is rendered here; a NAME is a deployment on the platform, exported
by the platform (``GET /api/v1/deployments/{name}/export``, so only your own) and unpacked here.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from modelplane.backends.export import TARGETS, ExportOptions, render, target
from modelplane.backends.export.files import inspect_model, write_folder
from modelplane.cli.common import TokenOpt, UrlOpt, client_for, err, friendly, out
from modelplane.errors import InvalidInput, InvalidSpec
from modelplane.spec import DeploymentSpec, load_spec

app = typer.Typer()


def spec_from_path(path: Path) -> DeploymentSpec:
    """A spec file as it is, or a model folder as ``modelplane deploy FOLDER`` would deploy it."""
    if path.is_file():
        return load_spec(path)
    from modelplane.model.loader import MANIFEST, read_manifest

    name = path.resolve().name
    if (path / MANIFEST).is_file():
        name = read_manifest(path).metadata.name
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63] or "model"
    return DeploymentSpec.parse({"name": slug, "model": {"path": str(path.resolve())}})


def _list() -> None:
    table = Table("TARGET", "WRITES")
    for t in TARGETS.values():
        table.add_row(t.name, t.summary)
    out.print(table)


@app.command("export")
@friendly
def export(
    source: Annotated[
        str | None,
        typer.Argument(
            help="a spec file (YAML/JSON) or a model folder, rendered here; else the name of "
            "one of your deployments, exported by the platform"
        ),
    ] = None,
    target_name: Annotated[
        str | None, typer.Option("--target", "-t", help="image, compose, kubernetes, …")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="folder to write [default: ./NAME-TARGET]")
    ] = None,
    image: Annotated[
        str | None, typer.Option(help="REGISTRY/NAME:TAG of the image the manifests run")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="write into a non-empty --out")] = False,
    list_targets: Annotated[
        bool, typer.Option("--list-targets", help="list the targets and exit")
    ] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Write files that run a deployment on your own infrastructure (warnings: in README.md)."""
    if list_targets:
        _list()
        return
    if source is None or target_name is None:
        raise InvalidInput(
            "give what to export and a --target",
            hint="e.g. `modelplane export examples/echo --target kubernetes`; "
            "`modelplane export --list-targets` lists the targets",
        )
    target(target_name)
    path = Path(source)
    if path.exists():
        spec = spec_from_path(path)
        dest = out_dir or Path(f"{spec.name}-{target_name}")
        bundle = render(spec, target_name, ExportOptions(image=image, facts=inspect_model(spec)))
        with out.status(f"writing {dest}…"):
            written = write_folder(bundle, dest, overwrite=force)
        warnings = bundle.warnings
    elif re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", source):
        dest = out_dir or Path(f"{source}-{target_name}")
        written, warnings = _from_platform(source, target_name, image, dest, force, url, token)
    else:
        raise InvalidSpec(f"{source} is neither a spec file, a model folder nor a deployment name")
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    out.print(
        f"wrote {len(written)} files to [bold]{dest}[/] for {target_name}; "
        f"next: see {dest / 'README.md'}",
        highlight=False,
    )


def _from_platform(
    name: str,
    target_name: str,
    image: str | None,
    dest: Path,
    force: bool,
    url: str | None,
    token: str | None,
) -> tuple[list[Path], list[str]]:
    if dest.exists() and any(dest.iterdir()) and not force:
        raise InvalidInput(
            f"{dest} exists and is not empty", hint="choose another --out, or add --force"
        )
    with client_for(url, token) as client, out.status(f"exporting {name} from the platform…"):
        body, warnings = client.export(name, target_name, image)
    written: list[Path] = []
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        for info in archive.infolist():
            rel = Path(*Path(info.filename).parts[1:])  # drop the top folder
            if info.is_dir() or ".." in rel.parts or rel.is_absolute():
                continue
            target_path = dest / rel
            target_path.parent.mkdir(parents=True, exist_ok=True)
            target_path.write_bytes(archive.read(info))
            if info.external_attr >> 16 & 0o111:
                target_path.chmod(0o755)
            written.append(target_path)
    return written, warnings
