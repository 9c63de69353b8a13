"""An S3-compatible endpoint over the platform's buckets, at ``/s3``, for OSCAR's storage client.

oscar-python's storage client (boto3) reads ``minio_provider`` from ``/system/config`` and talks
S3 to it. With local buckets there is no S3 server, so the platform serves the part of S3 that
clients use on buckets and objects, path-style: ``ListBuckets``, ``CreateBucket``,
``HeadBucket``, ``DeleteBucket``, ``ListObjects`` (v1 and v2, with ``prefix``, ``delimiter``,
paging), ``PutObject`` (plain or ``aws-chunked``), ``GetObject`` (with one ``Range``),
``HeadObject``, ``DeleteObject`` and multipart uploads. Objects written here trigger jobs like
any upload.

Authentication: the access key id of an AWS Signature V4 ``Authorization`` header is a modelplane
API token (``/system/config`` gives callers their own), the secret key is not used, and the
signature is not checked — the token is the credential, exactly as with ``Bearer``. A presigned
URL of ``/system/buckets/{name}/presign`` carries the platform's HMAC instead. Tokens in the
query string (boto3's own presigned URLs) are refused, as everywhere on the platform.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import shutil
import time
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request, Response

from modelplane.errors import AlreadyExists, InvalidInput, ModelplaneError, NotFound
from modelplane.oscar.buckets import Buckets, sign
from modelplane.security import Principal
from modelplane.storage import ObjectInfo

router = APIRouter(prefix="/s3", include_in_schema=False)
_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
SECRET_KEY = "modelplane"
"""What ``/system/config`` gives as the secret key: boto3 needs one, nobody checks it."""


class S3Error(Exception):
    def __init__(self, status: int, code: str, message: str, resource: str = "") -> None:
        self.status, self.code, self.message, self.resource = status, code, message, resource


def _error(exc: S3Error) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
        f"<Code>{exc.code}</Code><Message>{escape(exc.message)}</Message>"
        f"<Resource>{escape(exc.resource)}</Resource></Error>"
    )
    return Response(body, status_code=exc.status, media_type="application/xml")


def _translate(exc: ModelplaneError, bucket: str, key: str = "") -> S3Error:
    where = f"/{bucket}/{key}" if key else f"/{bucket}"
    if isinstance(exc, NotFound):
        code = "NoSuchKey" if key and "object" in exc.message.lower() else "NoSuchBucket"
        return S3Error(404, code, exc.message, where)
    if isinstance(exc, AlreadyExists):
        return S3Error(409, "BucketNotEmpty" if not key else "InvalidRequest", exc.message, where)
    if isinstance(exc, InvalidInput):
        return S3Error(400, "InvalidArgument", exc.message, where)
    return S3Error(exc.status, "InternalError", exc.message, where)


def access_key(header: str) -> str | None:
    """The access key id of an AWS SigV4 (or V2) ``Authorization`` header."""
    if header.startswith("AWS4-HMAC-SHA256 "):
        found = _CREDENTIAL.search(header)
        return unquote(found.group(1)) if found else None
    if header.startswith("AWS "):
        return header[4:].split(":", 1)[0] or None
    return None


def _principal(request: Request) -> Principal:
    q = request.query_params
    if "X-Amz-Credential" in q or "AWSAccessKeyId" in q:
        raise S3Error(
            403,
            "AccessDenied",
            "tokens in the query string are refused; use the Authorization "
            "header or a URL from /system/buckets/{name}/presign",
        )
    key = access_key(request.headers.get("authorization", ""))
    principal = request.app.state.deps.dataplane.authenticate(
        f"Bearer {key}".encode("latin-1") if key else b""
    )
    if principal is None or principal.deployment is not None:
        raise S3Error(403, "InvalidAccessKeyId", "the access key is not a valid modelplane token")
    return principal


def _presigned(request: Request, buckets: Buckets, bucket: str, key: str) -> bool:
    q = request.query_params
    if "mp-signature" not in q:
        return False
    try:
        expires = int(q.get("mp-expires", ""))
    except ValueError:
        raise S3Error(403, "AccessDenied", "malformed presigned URL") from None
    expected = sign(buckets.presign_key(), request.method, bucket, key, expires)
    if not hmac.compare_digest(expected, q["mp-signature"]) or expires < time.time():
        raise S3Error(403, "AccessDenied", "the presigned URL is invalid or has expired")
    return True


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _xml(body: str) -> Response:
    return Response('<?xml version="1.0" encoding="UTF-8"?>\n' + body, media_type="application/xml")


def decode_chunked(body: bytes) -> bytes:
    """The payload of an ``aws-chunked`` body (``<hex size>[;ext]\\r\\n<data>\\r\\n``..., then
    trailers)."""
    out: list[bytes] = []
    pos = 0
    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            raise S3Error(400, "IncompleteBody", "truncated aws-chunked body")
        size = int(body[pos:end].split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            return b"".join(out)
        start = end + 2
        out.append(body[start : start + size])
        pos = start + size + 2


def _head_headers(info: ObjectInfo) -> dict[str, str]:
    return {
        "ETag": f'"{info.etag}"',
        "Last-Modified": info.last_modified.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        "Content-Type": info.content_type or "application/octet-stream",
        "Accept-Ranges": "bytes",
    }


@router.api_route("", methods=["GET"])
@router.api_route("/", methods=["GET"])
async def list_buckets(request: Request) -> Response:
    try:
        principal = _principal(request)
        buckets = await Buckets(request.app.state.deps).list(principal)
    except S3Error as exc:
        return _error(exc)
    items = "".join(
        f"<Bucket><Name>{escape(b['bucket_name'])}</Name>"
        "<CreationDate>2000-01-01T00:00:00.000Z</CreationDate></Bucket>"
        for b in buckets
    )
    return _xml(
        f'<ListAllMyBucketsResult xmlns="{_NS}"><Owner><ID>{escape(principal.user)}</ID>'
        f"<DisplayName>{escape(principal.user)}</DisplayName></Owner>"
        f"<Buckets>{items}</Buckets></ListAllMyBucketsResult>"
    )


@router.api_route("/{bucket}", methods=["GET", "PUT", "HEAD", "DELETE"])
@router.api_route("/{bucket}/", methods=["GET", "PUT", "HEAD", "DELETE"])
async def bucket_op(bucket: str, request: Request) -> Response:
    deps = request.app.state.deps
    buckets = Buckets(deps)
    try:
        principal = _principal(request)
        try:
            if request.method == "PUT":
                await buckets.jobs.ensure_bucket(bucket, principal.user)
                return Response(status_code=200, headers={"Location": f"/{bucket}"})
            if request.method == "DELETE":
                await buckets.delete(bucket, principal, force=False)  # S3: only when empty
                return Response(status_code=204)
            await buckets.accessible(bucket, principal)
            if request.method == "HEAD":
                return Response(status_code=200)
            return await _list_objects(request, deps.storage, bucket)
        except ModelplaneError as exc:
            raise _translate(exc, bucket) from None
    except S3Error as exc:
        if request.method == "HEAD":
            return Response(status_code=exc.status)
        return _error(exc)


async def _list_objects(request: Request, storage: Any, bucket: str) -> Response:
    q = request.query_params
    v2 = q.get("list-type") == "2"
    prefix = q.get("prefix", "")
    delimiter = q.get("delimiter", "")
    try:
        max_keys = max(0, min(1000, int(q.get("max-keys", "1000"))))
    except ValueError:
        raise S3Error(400, "InvalidArgument", "max-keys must be an integer") from None
    after = (q.get("continuation-token") or q.get("start-after")) if v2 else q.get("marker")
    contents: list[ObjectInfo] = []
    common: list[str] = []
    truncated = False
    cursor = after or None
    while True:
        page = await asyncio.to_thread(storage.list, bucket, prefix, cursor, 1000)
        for obj in page:
            cursor = obj.key
            rest = obj.key[len(prefix) :]
            if delimiter and delimiter in rest:
                cp = prefix + rest.split(delimiter, 1)[0] + delimiter
                if common and common[-1] == cp:
                    continue
                entry: ObjectInfo | str = cp
            else:
                entry = obj
            if len(contents) + len(common) == max_keys:
                truncated = True
                break
            if isinstance(entry, str):
                common.append(entry)
            else:
                contents.append(entry)
        if truncated or len(page) < 1000:
            break
    last = max([o.key for o in contents] + common, default="")
    parts = [
        f'<ListBucketResult xmlns="{_NS}"><Name>{escape(bucket)}</Name>',
        f"<Prefix>{escape(prefix)}</Prefix><MaxKeys>{max_keys}</MaxKeys>",
        f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
    ]
    if delimiter:
        parts.append(f"<Delimiter>{escape(delimiter)}</Delimiter>")
    if v2:
        parts.append(f"<KeyCount>{len(contents) + len(common)}</KeyCount>")
        if truncated:
            parts.append(f"<NextContinuationToken>{escape(last)}</NextContinuationToken>")
    else:
        parts.append(f"<Marker>{escape(after or '')}</Marker>")
        if truncated:
            parts.append(f"<NextMarker>{escape(last)}</NextMarker>")
    for o in contents:
        parts.append(
            f"<Contents><Key>{escape(o.key)}</Key><LastModified>{_iso(o.last_modified)}"
            f"</LastModified><ETag>&quot;{o.etag}&quot;</ETag><Size>{o.size}</Size>"
            "<StorageClass>STANDARD</StorageClass></Contents>"
        )
    for cp in common:
        parts.append(f"<CommonPrefixes><Prefix>{escape(cp)}</Prefix></CommonPrefixes>")
    parts.append("</ListBucketResult>")
    return _xml("".join(parts))


@router.api_route("/{bucket}/{key:path}", methods=["GET", "PUT", "HEAD", "DELETE", "POST"])
async def object_op(bucket: str, key: str, request: Request) -> Response:
    deps = request.app.state.deps
    buckets = Buckets(deps)
    storage = deps.storage
    try:
        if not _presigned(request, buckets, bucket, key):
            principal = _principal(request)
            try:
                await buckets.accessible(bucket, principal)
            except ModelplaneError as exc:
                raise _translate(exc, bucket) from None
        try:
            q = request.query_params
            if "uploads" in q or "uploadId" in q:
                return await _multipart(request, buckets, bucket, key)
            if request.method == "POST":
                raise S3Error(501, "NotImplemented", "this POST is not served here")
            if request.method == "PUT":
                if "x-amz-copy-source" in request.headers:
                    raise S3Error(501, "NotImplemented", "CopyObject is not served here")
                body = await _payload(request)
                ctype = request.headers.get("content-type") or "application/octet-stream"
                info = await asyncio.to_thread(storage.put, bucket, key, body, ctype)
                await buckets.jobs.trigger(bucket, info)
                return Response(status_code=200, headers={"ETag": f'"{info.etag}"'})
            if request.method == "DELETE":
                await asyncio.to_thread(storage.delete, bucket, key)
                return Response(status_code=204)
            info = await asyncio.to_thread(storage.head, bucket, key)
            headers = _head_headers(info)
            if request.method == "HEAD":
                headers["Content-Length"] = str(info.size)
                return Response(status_code=200, headers=headers)
            data = await asyncio.to_thread(storage.get, bucket, key)
            return _ranged(data, request.headers.get("range", ""), headers)
        except ModelplaneError as exc:
            raise _translate(exc, bucket, key) from None
    except S3Error as exc:
        if request.method == "HEAD":
            return Response(status_code=exc.status)
        return _error(exc)


async def _payload(request: Request) -> bytes:
    body = await request.body()
    sha = request.headers.get("x-amz-content-sha256", "")
    if sha.startswith("STREAMING-") or "aws-chunked" in request.headers.get("content-encoding", ""):
        return decode_chunked(body)
    return body


_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


async def _multipart(request: Request, buckets: Buckets, bucket: str, key: str) -> Response:
    """Multipart uploads (boto3's managed transfers use them above 8 MB): parts are kept in
    ``<data dir>/oscar/.uploads/<upload id>/`` until the upload completes into one object."""
    q = request.query_params
    root = buckets.deps.settings.data_dir / "oscar" / ".uploads"
    if request.method == "POST" and "uploads" in q:
        upload_id = uuid.uuid4().hex
        folder = root / upload_id
        await asyncio.to_thread(folder.mkdir, parents=True)
        meta = {"bucket": bucket, "key": key, "content_type": request.headers.get("content-type")}
        await asyncio.to_thread((folder / "upload.json").write_text, json.dumps(meta))
        return _xml(
            f'<InitiateMultipartUploadResult xmlns="{_NS}"><Bucket>{escape(bucket)}</Bucket>'
            f"<Key>{escape(key)}</Key><UploadId>{upload_id}</UploadId>"
            "</InitiateMultipartUploadResult>"
        )
    upload_id = q.get("uploadId", "")
    folder = root / upload_id
    if not _UPLOAD_ID.match(upload_id) or not folder.is_dir():
        raise S3Error(
            404, "NoSuchUpload", "the multipart upload does not exist", f"/{bucket}/{key}"
        )
    meta = json.loads(await asyncio.to_thread((folder / "upload.json").read_text))
    if (meta["bucket"], meta["key"]) != (bucket, key):
        raise S3Error(400, "InvalidRequest", "the upload belongs to another object")
    if request.method == "PUT":
        try:
            number = int(q.get("partNumber", ""))
        except ValueError:
            raise S3Error(400, "InvalidArgument", "partNumber must be 1-10000") from None
        if not 1 <= number <= 10_000:
            raise S3Error(400, "InvalidArgument", "partNumber must be 1-10000")
        data = await _payload(request)
        await asyncio.to_thread((folder / f"{number:05d}.part").write_bytes, data)
        return Response(status_code=200, headers={"ETag": f'"{hashlib.md5(data).hexdigest()}"'})
    if request.method == "DELETE":
        await asyncio.to_thread(shutil.rmtree, folder, True)
        return Response(status_code=204)
    if request.method == "POST":
        parts = sorted(folder.glob("*.part"))
        if not parts:
            raise S3Error(400, "InvalidPart", "no parts were uploaded")
        ctype = meta.get("content_type") or "application/octet-stream"
        storage = buckets.deps.storage
        assert storage is not None

        def assemble() -> ObjectInfo:
            joined = folder / "object"
            with joined.open("wb") as out:
                for part in parts:
                    with part.open("rb") as f:
                        shutil.copyfileobj(f, out)
            with joined.open("rb") as f:
                return storage.put(bucket, key, f, ctype)

        try:
            info = await asyncio.to_thread(assemble)
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        await buckets.jobs.trigger(bucket, info)
        return _xml(
            f'<CompleteMultipartUploadResult xmlns="{_NS}"><Bucket>{escape(bucket)}</Bucket>'
            f"<Key>{escape(key)}</Key><ETag>&quot;{info.etag}&quot;</ETag>"
            "</CompleteMultipartUploadResult>"
        )
    raise S3Error(405, "MethodNotAllowed", "not a multipart operation")


def _ranged(data: bytes, header: str, headers: dict[str, str]) -> Response:
    found = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if not found:
        return Response(data, headers=headers, media_type=headers["Content-Type"])
    first, last = found.groups()
    size = len(data)
    if first:
        start, end = int(first), min(int(last) if last else size - 1, size - 1)
    else:
        start, end = max(0, size - int(last or 0)), size - 1
    if start >= size or start > end:
        raise S3Error(416, "InvalidRange", "the requested range is not satisfiable")
    headers = headers | {"Content-Range": f"bytes {start}-{end}/{size}"}
    return Response(
        data[start : end + 1], status_code=206, headers=headers, media_type=headers["Content-Type"]
    )
