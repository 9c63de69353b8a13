"""OSCAR's service definition as OSCAR's Go types declare it, and how its keys decode.

OSCAR reads a definition with Go's ``encoding/json``, which matches an object's keys to a
struct's fields case-insensitively (an exact match first), so ``environment: Variables:`` is
``environment.variables`` there and the upstream examples rely on it. :func:`canonical` does the
same over :data:`SERVICE` (a struct is a dict of field name -> its type; ``MAP`` is a map whose
keys are data and kept as written; ``ANY`` is any value; a one-item list is a list of that type),
and reports every key that is no field at all, so the caller can refuse it by name. Pure.
"""

from __future__ import annotations

from typing import Any

ANY = "any"
MAP = "map"

STORAGE_IO: dict[str, Any] = {
    "storage_provider": ANY,
    "path": ANY,
    "suffix": ANY,
    "prefix": ANY,
    "options": ANY,
}
REPLICA: dict[str, Any] = {
    "type": ANY,
    "cluster_id": ANY,
    "service_name": ANY,
    "url": ANY,
    "ssl_verify": ANY,
    "priority": ANY,
    "headers": MAP,
}
EXPOSE: dict[str, Any] = {
    "min_scale": ANY,
    "max_scale": ANY,
    "api_port": ANY,
    "cpu_threshold": ANY,
    "rewrite_target": ANY,
    "nodePort": ANY,
    "default_command": ANY,
    "set_auth": ANY,
    "auth_type": ANY,
    "health_path": ANY,
    "probe_mode": ANY,
}
SERVICE: dict[str, Any] = {
    "name": ANY,
    "cluster_id": ANY,
    "memory": ANY,
    "cpu": ANY,
    "total_memory": ANY,
    "total_cpu": ANY,
    "ephemeral_storage_request": ANY,
    "enable_gpu": ANY,
    "enable_sgx": ANY,
    "image_prefetch": ANY,
    "synchronous": {"min_scale": ANY, "max_scale": ANY},
    "federation": {
        "group_id": ANY,
        "topology": ANY,
        "delegation": ANY,
        "rescheduler_threshold": ANY,
        "members": [REPLICA],
    },
    "log_level": ANY,
    "image": ANY,
    "alpine": ANY,
    "token": ANY,
    "file_stage_in": ANY,
    "input": [STORAGE_IO],
    "output": [STORAGE_IO],
    "script": ANY,
    "image_pull_secrets": ANY,
    "expose": EXPOSE,
    "environment": {"variables": MAP, "secrets": MAP},
    "annotations": MAP,
    "vo": ANY,
    "labels": MAP,
    "storage_providers": ANY,
    "clusters": ANY,
    "owner": ANY,
    "namespace": ANY,
    "interlink_node_name": ANY,
    "visibility": ANY,
    "allowed_users": ANY,
    "isolation_level": ANY,
    "bucket_list": ANY,
    "mount": STORAGE_IO,
    "volume": {"name": ANY, "size": ANY, "mount_path": ANY, "lifecycle_policy": ANY},
    "volume_status": ANY,
    "deployment": ANY,
    "kserve": ANY,
    # Older OSCAR releases (and some upstream examples) list delegation targets here.
    "replicas": [REPLICA],
    "delegation": ANY,
    # modelplane's own extension: a model folder instead of a script.
    "model": ANY,
}


def canonical(data: Any, schema: Any = SERVICE, at: str = "") -> tuple[Any, list[str]]:
    """``data`` with every struct key spelt as the schema spells it (keys that match no field
    kept as written), and the paths of those keys. Of two keys folding to one field, the later
    wins, as in Go."""
    if schema in (ANY, MAP) or data is None:
        return data, []
    if isinstance(schema, list):
        if not isinstance(data, list):
            return data, []
        out, unknown = [], []
        for i, item in enumerate(data):
            value, bad = canonical(item, schema[0], f"{at}[{i}]")
            out.append(value)
            unknown += bad
        return out, unknown
    if not isinstance(data, dict):
        return data, []
    folded: dict[str, Any] = {}
    unknown = []
    lower = {name.lower(): name for name in schema}
    for key, value in data.items():
        name = key if key in schema else lower.get(str(key).lower())
        where = f"{at}.{key}" if at else str(key)
        if name is None:
            unknown.append(where)
            folded[key] = value  # kept as written: the caller refuses it by name
            continue
        folded[name], bad = canonical(value, schema[name], f"{at}.{name}" if at else name)
        unknown += bad
    return folded, unknown
