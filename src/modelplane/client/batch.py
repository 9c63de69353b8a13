"""One-off batch predictions over a whole dataset: a folder or an S3 prefix in, the same out.

Runs from the client against the deployment's predict endpoint with bounded concurrency, so a
batch uses the platform's fast data plane and its replicas (a serverless deployment scales up
for it and back to zero after). Resumable: an input whose result already exists is skipped, so
running the same command again after an interruption computes only what is missing.

Results are named as jobs name theirs (``modelplane.jobs.keys.output_key``): the input's
relative path plus an extension for the result's type (``cat.png`` -> ``cat.png.json``).
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from modelplane.jobs.keys import output_key
from modelplane.storage import LocalLocation, S3Location, parse_location, validate_key


class Side(Protocol):
    def names(self) -> list[str]: ...
    def read(self, name: str) -> bytes: ...
    def write(self, name: str, data: bytes, content_type: str) -> None: ...


class LocalSide:
    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        out = []
        for dirpath, _dirs, files in os.walk(self.root):
            for f in files:
                rel = (Path(dirpath) / f).relative_to(self.root).as_posix()
                if not any(part.startswith(".") for part in rel.split("/")):
                    out.append(rel)
        return sorted(out)

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def write(self, name: str, data: bytes, content_type: str) -> None:
        validate_key(name)  # never outside the output folder
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_bytes(data)
        os.replace(tmp, path)


class S3Side:
    def __init__(self, location: S3Location, client: Any) -> None:
        self.location = location
        self.client = client

    def names(self) -> list[str]:
        out = []
        prefix = self.location.prefix
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.location.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                out.append(obj["Key"][len(prefix) :])
        return sorted(out)

    def read(self, name: str) -> bytes:
        obj = self.client.get_object(Bucket=self.location.bucket, Key=self.location.key_for(name))
        return obj["Body"].read()

    def write(self, name: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.location.bucket,
            Key=self.location.key_for(name),
            Body=data,
            ContentType=content_type,
        )


def side_for(text: str, s3_client: Any = None) -> Side:
    location = parse_location(text)
    if isinstance(location, LocalLocation):
        return LocalSide(location.path)
    if s3_client is None:
        import boto3

        s3_client = boto3.client("s3", endpoint_url=os.environ.get("MODELPLANE_S3_ENDPOINT"))
    return S3Side(location, s3_client)


@dataclass
class BatchReport:
    total: int = 0
    skipped: int = 0
    done: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def pending(inputs: list[str], outputs: list[str]) -> list[str]:
    """Inputs with no result yet. Pure: a result is ``<input>.<ext>``, any extension."""
    have = set()
    for out in outputs:
        base, dot, ext = out.rpartition(".")
        if dot and "/" not in ext:
            have.add(base)
    return [name for name in inputs if name not in have]


async def run_batch(
    url: str,
    token: str | None,
    deployment: str,
    source: Side,
    target: Side,
    *,
    concurrency: int = 16,
    progress: Callable[[int, int], None] | None = None,
    timeout: float = 300.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> BatchReport:
    inputs = await asyncio.to_thread(source.names)
    outputs = await asyncio.to_thread(target.names)
    todo = pending(inputs, outputs)
    report = BatchReport(total=len(inputs), skipped=len(inputs) - len(todo))
    if progress:
        progress(report.skipped, report.total)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for name in todo:
        queue.put_nowait(name)
    path = f"/api/v1/deployments/{deployment}/predict"

    async def worker() -> None:
        # One client with one connection per worker: httpx's pool scans all its connections on
        # every request, which made a shared 16-connection pool the batch's bottleneck.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(
            base_url=url, headers=headers, timeout=timeout, limits=limits, transport=transport
        ) as http:
            while True:
                try:
                    name = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    data = await asyncio.to_thread(source.read, name)
                    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
                    resp = await http.post(path, content=data, headers={"content-type": ctype})
                    if resp.status_code == 200:
                        rtype = resp.headers.get("content-type", "application/octet-stream")
                        out = output_key(name, rtype)
                        await asyncio.to_thread(target.write, out, resp.content, rtype)
                        report.done += 1
                    else:
                        report.failed.append((name, f"{resp.status_code}: {_message(resp)}"))
                except (httpx.HTTPError, OSError) as exc:
                    report.failed.append((name, f"{type(exc).__name__}: {exc}"))
                if progress:
                    progress(report.skipped + report.done + len(report.failed), report.total)

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(todo) or 1)))))
    return report


def _message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        return str(body.get("message", body)) if isinstance(body, dict) else str(body)
    except ValueError:
        return resp.text[:200]
