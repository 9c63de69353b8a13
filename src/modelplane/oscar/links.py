"""A service's ``mount`` and ``volume``: folders linked into each run of its script.

OSCAR mounts a bucket path into the container under ``/mnt/<bucket>/<folder>`` (rclone) and a
managed volume at its ``mount_path``. modelplane runs the script on the host, so both become
folders linked into the script's working folder (its current directory): the mount at
``mnt/<bucket>/<folder>``, the volume at ``mount_path`` without its leading ``/``
(``/data`` -> ``./data``). The mount is the bucket's own folder on local storage, so it is live
both ways (files the script writes there are objects of the bucket at once), and on S3 a mirror
folder synced both ways every few seconds (:mod:`.mounts`); a volume is a
folder of the platform's data directory that outlives the service unless its
``lifecycle_policy`` is ``delete``.

:func:`plan` is pure; :func:`write` is the I/O (volumes themselves: :mod:`.volumes`).
"""

from __future__ import annotations

import json
from pathlib import Path

from modelplane.model.oscar import LINKS
from modelplane.oscar.fdl import OscarService
from modelplane.oscar.mounts import mirror_folder
from modelplane.oscar.volumes import volumes_root


def plan(service: OscarService, buckets_root: Path | None, data_dir: Path) -> list[dict[str, str]]:
    """The links for ``service``: ``[{"at": relative path, "to": absolute folder}]``."""
    links = []
    if service.mount is not None:
        path = service.mount.storage_path()
        if buckets_root is not None:
            target = buckets_root / path.bucket / path.folder
        else:  # S3: a mirror folder the platform keeps in step (modelplane.oscar.mounts)
            target = mirror_folder(data_dir, service.name, path)
        links.append({"at": f"mnt/{path}", "to": str(target)})
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
