"""OSCAR's managed volumes (``/system/volumes``, a service's ``volume``): persistent folders.

A volume is a folder ``<data dir>/oscar-volumes/<name>/`` that scripts see at their service's
``volume.mount_path`` (:mod:`modelplane.oscar.links`), and a record
``<data dir>/oscar/.volumes/<name>.json`` of its owner, size, how it was made and what happens to
it with its service. ``size`` is recorded, not enforced: a folder has no quota. A volume belongs to
its creator; a service may attach only its owner's volumes. One made by a service
(``volume.size``) goes with it unless ``lifecycle_policy: retain``; one made through the API
(or named by a service without a size) stays until deleted, which is refused while a service
uses it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

from modelplane.core.deps import Deps
from modelplane.errors import AlreadyExists, InvalidInput, NotFound
from modelplane.oscar.fdl import OscarService
from modelplane.oscar.records import ServiceRecords
from modelplane.security import Principal
from modelplane.spec.deployment import NAME_RE, parse_memory


def volumes_root(data_dir: Path) -> Path:
    return data_dir / "oscar-volumes"


class Volumes:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.data_dir = deps.settings.data_dir
        self.meta_root = self.data_dir / "oscar" / ".volumes"

    # -- records --------------------------------------------------------------------------------
    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((self.meta_root / f"{name}.json").read_text())
        except (OSError, ValueError):
            return None
        return data

    def _write(self, name: str, record: dict[str, Any]) -> None:
        self.meta_root.mkdir(parents=True, exist_ok=True)
        tmp = self.meta_root / f".{name}.tmp"
        tmp.write_text(json.dumps(record))
        os.replace(tmp, self.meta_root / f"{name}.json")
        (volumes_root(self.data_dir) / name).mkdir(parents=True, exist_ok=True)

    def _remove(self, name: str) -> None:
        (self.meta_root / f"{name}.json").unlink(missing_ok=True)
        shutil.rmtree(volumes_root(self.data_dir) / name, ignore_errors=True)

    def _attachments(self, name: str) -> list[dict[str, str]]:
        records = ServiceRecords(self.data_dir / "oscar")
        out = []
        for service in records.names():
            record = records.read(service)
            vol = (record.definition.get("volume") if record else None) or {}
            if isinstance(vol, dict) and (vol.get("name") or service) == name:
                out.append({"service_name": service, "mount_path": str(vol.get("mount_path"))})
        return out

    def view(self, name: str, record: dict[str, Any]) -> dict[str, Any]:
        attached = self._attachments(name)
        return {
            "name": name,
            "size": record.get("size", ""),
            "owner_user": record.get("owner", ""),
            "created_by_service": record.get("created_by_service", ""),
            "creation_mode": record.get("creation_mode", "api"),
            "lifecycle_policy": record.get("lifecycle_policy", "retain"),
            "attachments": attached,
            "status": {
                "phase": "in_use" if attached else "ready",
                "attachment_count": len(attached),
            },
        }

    # -- services -------------------------------------------------------------------------------
    def check_service(self, service: OscarService, owner: str) -> None:
        """A service's ``volume`` is a new volume of its own or an existing one of its owner."""
        vol = service.volume
        if vol is None:
            return
        name = vol.volume_name(service.name)
        record = self._read(name)
        if record is not None and record.get("owner") != owner:
            raise AlreadyExists(f"volume.name: volume {name!r} is not yours", field="volume.name")
        if record is None and not vol.size:
            raise InvalidInput(
                f"volume.name: there is no volume {name!r}",
                hint="create it (POST /system/volumes) or give volume.size to make one",
                field="volume.name",
            )
        if (
            record is not None
            and vol.size
            and record.get("created_by_service")
            not in (
                None,
                service.name,
            )
        ):
            raise AlreadyExists(
                f"volume.name: volume {name!r} already exists; name it without a size to use it",
                field="volume.name",
            )

    def attach(self, service: OscarService, owner: str) -> None:
        vol = service.volume
        if vol is None or not vol.size:
            return
        name = vol.volume_name(service.name)
        if self._read(name) is None:
            self._write(
                name,
                {
                    "owner": owner,
                    "size": vol.size,
                    "created_by_service": service.name,
                    "creation_mode": "service",
                    "lifecycle_policy": vol.lifecycle_policy or "delete",
                },
            )

    def detach(self, definition: dict[str, Any], service: str) -> None:
        """The service is gone: remove the volume it made unless it is retained."""
        vol = definition.get("volume")
        if not isinstance(vol, dict):
            return
        name = vol.get("name") or service
        record = self._read(name)
        if (
            record is not None
            and record.get("created_by_service") == service
            and record.get("lifecycle_policy") == "delete"
        ):
            self._remove(name)

    # -- the API --------------------------------------------------------------------------------
    def _visible(self, name: str, principal: Principal) -> dict[str, Any]:
        record = self._read(name)
        if record is None or not principal.can_see(str(record.get("owner"))):
            raise NotFound(f"volume {name!r} does not exist", volume=name)
        return record

    async def list(self, principal: Principal) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            if not self.meta_root.is_dir():
                return []
            out = []
            for path in sorted(self.meta_root.glob("*.json")):
                record = self._read(path.stem)
                if record is not None and principal.can_see(str(record.get("owner"))):
                    out.append(self.view(path.stem, record))
            return out

        return await asyncio.to_thread(read)

    async def get(self, name: str, principal: Principal) -> dict[str, Any]:
        return await asyncio.to_thread(lambda: self.view(name, self._visible(name, principal)))

    async def create(self, body: Any, principal: Principal) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InvalidInput("The volume specification is not valid: a JSON object")
        name, size = str(body.get("name") or ""), str(body.get("size") or "")
        if not NAME_RE.match(name):
            raise InvalidInput(
                f"name: {name!r} must be lowercase letters, digits and '-'", field="name"
            )
        try:
            parse_memory(size)
        except ValueError:
            raise InvalidInput(f"size: {size!r} is not a size such as 1Gi", field="size") from None

        def make() -> dict[str, Any]:
            if self._read(name) is not None:
                raise AlreadyExists(f"volume {name!r} already exists", volume=name)
            record = {
                "owner": principal.user,
                "size": size,
                "creation_mode": "api",
                "lifecycle_policy": "retain",
            }
            self._write(name, record)
            return self.view(name, record)

        return await asyncio.to_thread(make)

    async def delete(self, name: str, principal: Principal) -> None:
        def remove() -> None:
            self._visible(name, principal)
            users = self._attachments(name)
            if users:
                raise InvalidInput(
                    f"volume {name!r} is in use by {', '.join(a['service_name'] for a in users)}",
                    hint="remove those services or their volume first",
                    volume=name,
                )
            self._remove(name)

        await asyncio.to_thread(remove)
