"""A service's ``mount`` and ``volume``: folders linked into each run of its script.

OSCAR mounts a bucket path into the container under ``/mnt/<bucket>/<folder>`` (rclone) and a
managed volume at its ``mount_path``. modelplane runs the script on the host, so both become
folders linked into the script's working folder (its current directory): the mount at
``mnt/<bucket>/<folder>``, the volume at ``mount_path`` without its leading ``/``
(``/data`` -> ``./data``). The mount is the bucket's own folder on local storage, so it is live
both ways (files the script writes there are objects of the bucket at once); a volume is a
folder of the platform's data directory that outlives the service unless its
``lifecycle_policy`` is ``delete``.

:func:`plan` is pure; :func:`write` is the I/O (volumes themselves: :mod:`.volumes`).
"""

from __future__ import annotations

import json
from pathlib import Path

from modelplane.errors import InvalidInput
from modelplane.model.oscar import LINKS
from modelplane.oscar.fdl import OscarService
from modelplane.oscar.volumes import volumes_root


def plan(service: OscarService, buckets_root: Path | None, data_dir: Path) -> list[dict[str, str]]:
    """The links for ``service``: ``[{"at": relative path, "to": absolute folder}]``."""
    links = []
    if service.mount is not None:
        if buckets_root is None:
            raise InvalidInput(
                "mount: only local buckets can be mounted into a script's folder "
                "(this platform runs with --storage s3)",
                field="mount",
            )
        path = service.mount.storage_path()
        links.append(
            {
                "at": f"mnt/{path}",
                "to": str(buckets_root / path.bucket / path.folder),
            }
        )
    if service.volume is not None:
        vol = service.volume
        links.append(
            {
                "at": vol.mount_path.strip("/"),
                "to": str(volumes_root(data_dir) / vol.volume_name(service.name)),
            }
        )
    return links


def write(folder: Path, links: list[dict[str, str]]) -> None:
    path = folder / LINKS
    if not links:
        path.unlink(missing_ok=True)
        return
    for link in links:
        Path(link["to"]).mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"links": links}, indent=2))
