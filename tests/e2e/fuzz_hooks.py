"""schemathesis hooks for tests/e2e/test_api_fuzz.py (loaded through ``SCHEMATHESIS_HOOKS``).

A model upload's body is a zip archive of a model folder: bytes no JSON Schema can describe, so
the document says ``format: binary`` and this strategy makes archives the way a user would (the
echo example's files under a folder of a generated name, or at the archive's root).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import strategies as st

ECHO = Path(__file__).resolve().parents[2] / "examples" / "echo"
FILES = {p.name: p.read_bytes() for p in sorted(ECHO.iterdir()) if p.is_file()}


def model_zip(folder: str) -> bytes:
    """The echo model's files, under ``folder/`` (or at the root when ``folder`` is empty)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in FILES.items():
            archive.writestr(f"{folder}/{name}" if folder else name, data)
    return out.getvalue()


schemathesis.openapi.media_type(
    "application/zip",
    st.builds(model_zip, st.from_regex(r"\A[a-z][a-z0-9_-]{0,20}\Z") | st.just("")),
    aliases=["application/x-zip-compressed"],
)


REPLACE_SPEC = ("PUT", "/api/v1/deployments/{name}")
SPARE_BUCKETS = ("fuzz-put-out", "fuzz-put-out2")


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: Any, kwargs: dict[str, Any]) -> None:
    """A replaced spec is sent the way a client that read the API's documentation sends one:
    to a deployment that exists (the stateful phase may have deleted the one made for it: it is
    made again), and keeping the rules between the spec's fields that no JSON Schema states
    (:func:`keep_spec_rules`). Every phase's requests pass here (``map_body`` misses the
    coverage phase's)."""
    if (case.method.upper(), case.operation.path) != REPLACE_SPEC:
        return
    ensure_replaced_deployment()
    if isinstance(case.body, dict):
        case.body = keep_spec_rules(case.body)


def ensure_replaced_deployment() -> None:
    """The deployment the fuzzer replaces, made again if it is gone (the test passes where)."""
    url, token = os.environ["MODELPLANE_FUZZ_URL"], os.environ["MODELPLANE_FUZZ_TOKEN"]
    auth = {"Authorization": f"Bearer {token}"}
    spec = json.loads(os.environ["MODELPLANE_FUZZ_PUT_SPEC"])
    found = httpx.get(f"{url}/api/v1/deployments/{spec['name']}", headers=auth, timeout=30)
    if found.status_code == 404:
        made = httpx.post(f"{url}/api/v1/deployments", json=spec, headers=auth, timeout=30)
        made.raise_for_status()


def keep_spec_rules(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with ``scale.min <= scale.max``; ``input`` and ``output`` set together, to
    different buckets; with ``files``, the buckets of its paths, and no output path in the
    input's bucket. The rest is left as generated (invalid values included: the coverage
    phase's negative cases stay negative)."""
    body = dict(body)
    scale = body.get("scale")
    if isinstance(scale, dict):
        low, high = scale.get("min", 0), scale.get("max", 4)
        if isinstance(low, int) and isinstance(high, int) and low > high:
            body["scale"] = scale | {"min": high, "max": low}
    files = body.get("files")
    if isinstance(files, dict) and isinstance(files.get("input"), dict) and files.get("outputs"):
        if isinstance(files["outputs"], list):
            source = files["input"].get("bucket")
            outputs = [_away_from(source, o) for o in files["outputs"]]
            body["files"] = files | {"outputs": outputs}
            body["input"] = source
            first = outputs[0]
            body["output"] = first.get("bucket") if isinstance(first, dict) else None
        return body
    source, target = body.get("input"), body.get("output")
    if source is None and target is not None:
        body["input"] = _other(target)
    elif source is not None and (target is None or target == source):
        body["output"] = _other(source)
    return body


def _away_from(source: object, output: Any) -> Any:
    """An output path moved to another bucket when it is in the input's."""
    if isinstance(output, dict) and output.get("bucket") == source:
        return output | {"bucket": _other(source)}
    return output


def _other(bucket: object) -> str:
    """A bucket of the fuzzer's that is not ``bucket``."""
    return SPARE_BUCKETS[1] if bucket == SPARE_BUCKETS[0] else SPARE_BUCKETS[0]
