"""Buckets on S3 and S3-compatible servers (MinIO, Ceph RGW, moto), through boto3.

boto3 is imported on first use, so ``modelplane.storage`` imports without it; constructing the
store does not touch the network or read credentials either (rule: constructors don't probe the
world). botocore's exceptions never leave this module: :func:`_translated` turns them into the
classes of :mod:`modelplane.errors` at this boundary.

Objects are always written with a single ``PutObject`` carrying a ``Content-MD5`` header, so the
server verifies the bytes and the ETag is the content's MD5, as :class:`ObjectInfo` promises
(for servers that do not apply KMS encryption). Streams are spooled to a temporary file first,
because S3 needs the length and the digest before the body.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import hashlib
import itertools
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from modelplane.errors import (
    AlreadyExists,
    Forbidden,
    InvalidInput,
    ModelplaneError,
    NotFound,
    PayloadTooLarge,
    Timeout,
    Unauthenticated,
    Unavailable,
)
from modelplane.storage._files import CHUNK_SIZE, iter_chunks, write_atomically
from modelplane.storage.base import DEFAULT_CONTENT_TYPE, DEFAULT_LIST_LIMIT, ObjectInfo, PutData
from modelplane.storage.keys import (
    validate_bucket_name,
    validate_content_type,
    validate_key,
    validate_prefix,
)

__all__ = ["S3BucketStore"]

# Streams up to this size are spooled in memory, larger ones on disk.
_SPOOL_IN_MEMORY = 16 * 1024 * 1024
# DeleteObjects takes at most this many keys per request.
_DELETE_BATCH = 1000

_NOT_FOUND_CODES = {"NoSuchBucket", "NoSuchKey", "NotFound", "404"}
_FORBIDDEN_CODES = {"AccessDenied", "AllAccessDisabled", "403"}
_UNAUTHENTICATED_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
_CONFLICT_CODES = {"BucketNotEmpty", "BucketAlreadyExists", "OperationAborted"}
_UNAVAILABLE_CODES = {"SlowDown", "ServiceUnavailable", "503", "InternalError", "500"}
_INVALID_CODES = {"InvalidBucketName", "KeyTooLongError", "InvalidArgument", "InvalidDigest"}


class S3BucketStore:
    """A :class:`~modelplane.storage.base.BucketStore` on S3 or any S3-speaking server.

    Give ``endpoint_url`` for MinIO and other servers (path-style addressing is then used, since
    they rarely serve ``bucket.host`` names); leave it out for AWS. Credentials left out come from
    boto3's usual chain (environment, config files, instance roles). ``client`` injects a ready
    boto3 S3 client instead, and the other arguments are then ignored.
    """

    def __init__(
        self,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        client: Any | None = None,
    ) -> None:
        self._endpoint_url = endpoint_url
        self._region = region
        self._access_key = access_key
        self._secret_key = secret_key
        self._client_instance = client
        self._client_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3BucketStore(endpoint_url={self._endpoint_url!r}, region={self._region!r})"

    @property
    def _client(self) -> Any:
        # Built once, lazily; boto3 clients are thread-safe but building them is not.
        if self._client_instance is None:
            with self._client_lock:
                if self._client_instance is None:
                    self._client_instance = self._build_client()
        return self._client_instance

    def _build_client(self) -> Any:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ModelplaneError(
                "the S3 bucket store needs boto3", hint="pip install boto3"
            ) from exc
        config = Config(
            s3={"addressing_style": "path" if self._endpoint_url else "auto"},
            retries={"mode": "standard", "max_attempts": 3},
            # We send Content-MD5 ourselves; extra checksums trip older S3-compatible servers.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session(
            aws_access_key_id=self._access_key,
            aws_secret_access_key=self._secret_key,
            region_name=self._region,
        )
        return session.client("s3", endpoint_url=self._endpoint_url, config=config)

    # -- buckets -----------------------------------------------------------------------------

    def create_bucket(self, name: str) -> None:
        """Make sure bucket ``name`` exists (in the store's region)."""
        validate_bucket_name(name)
        kwargs: dict[str, Any] = {"Bucket": name}
        region = self._region or getattr(getattr(self._client, "meta", None), "region_name", None)
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        with _translated(bucket=name, ignore={"BucketAlreadyOwnedByYou"}):
            self._client.create_bucket(**kwargs)

    def delete_bucket(self, name: str, *, force: bool = False) -> None:
        """Delete bucket ``name``; with ``force``, delete its objects first."""
        validate_bucket_name(name)
        if force:
            # Every key, including those list() skips, or the bucket would never be empty.
            while batch := list(
                itertools.islice(
                    self._iter_listing(name, "", None, page=_DELETE_BATCH), _DELETE_BATCH
                )
            ):
                with _translated(bucket=name):
                    response = self._client.delete_objects(
                        Bucket=name,
                        Delete={"Objects": [{"Key": o["Key"]} for o in batch], "Quiet": True},
                    )
                if errors := response.get("Errors"):
                    first = errors[0]
                    _raise_for_code(
                        str(first.get("Code", "")),
                        str(first.get("Message", "")),
                        name,
                        first.get("Key"),
                        RuntimeError(f"{len(errors)} deletes failed"),
                    )
        with _translated(bucket=name):
            self._client.delete_bucket(Bucket=name)

    def bucket_exists(self, name: str) -> bool:
        """Tell whether bucket ``name`` exists (and is reachable with these credentials)."""
        validate_bucket_name(name)
        try:
            with _translated(bucket=name):
                self._client.head_bucket(Bucket=name)
        except NotFound:
            return False
        return True

    def list_buckets(self) -> builtins.list[str]:
        """Return the names of all buckets, sorted."""
        with _translated():
            response = self._client.list_buckets()
        return sorted(b["Name"] for b in response.get("Buckets", []))

    # -- objects -----------------------------------------------------------------------------

    def put(
        self, bucket: str, key: str, data: PutData, content_type: str | None = None
    ) -> ObjectInfo:
        """Store ``data`` under ``key`` with one PutObject, verified by its Content-MD5."""
        validate_bucket_name(bucket)
        validate_key(key)
        ctype = (
            DEFAULT_CONTENT_TYPE if content_type is None else validate_content_type(content_type)
        )
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            digest = hashlib.md5(usedforsecurity=False)
            size = 0
            for chunk in iter_chunks(data):
                spool.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            spool.seek(0)
            with _translated(bucket=bucket, key=key):
                self._client.put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=spool,
                    ContentLength=size,
                    ContentMD5=base64.b64encode(digest.digest()).decode("ascii"),
                    ContentType=ctype,
                )
        # PutObject does not answer with LastModified; ask, so put and head agree exactly.
        return self.head(bucket, key)

    def get(self, bucket: str, key: str) -> bytes:
        """Return the whole content of an object."""
        validate_bucket_name(bucket)
        validate_key(key)
        with _translated(bucket=bucket, key=key):
            response = self._client.get_object(Bucket=bucket, Key=key)
            with contextlib.closing(response["Body"]) as body:
                data: bytes = body.read()
        return data

    def get_to_path(self, bucket: str, key: str, path: Path) -> ObjectInfo:
        """Stream an object into the file ``path``, replacing it atomically."""
        validate_bucket_name(bucket)
        validate_key(key)
        with _translated(bucket=bucket, key=key):
            response = self._client.get_object(Bucket=bucket, Key=key)
            with contextlib.closing(response["Body"]) as body:
                write_atomically(Path(path), body.iter_chunks(CHUNK_SIZE))
        return _info_from_head(bucket, key, response)

    def head(self, bucket: str, key: str) -> ObjectInfo:
        """Describe an object with one HeadObject."""
        validate_bucket_name(bucket)
        validate_key(key)
        with _translated(bucket=bucket, key=key):
            response = self._client.head_object(Bucket=bucket, Key=key)
        return _info_from_head(bucket, key, response)

    def exists(self, bucket: str, key: str) -> bool:
        """Tell whether an object exists; a missing bucket is ``NotFound``."""
        try:
            self.head(bucket, key)
        except NotFound:
            # HeadObject answers a bare 404 for a missing bucket too; tell the two apart.
            if not self.bucket_exists(bucket):
                raise
            return False
        return True

    def delete(self, bucket: str, key: str) -> None:
        """Delete an object; a missing object is not an error, a missing bucket is."""
        validate_bucket_name(bucket)
        validate_key(key)
        with _translated(bucket=bucket, key=key):
            self._client.delete_object(Bucket=bucket, Key=key)

    def list(
        self,
        bucket: str,
        prefix: str = "",
        start_after: str | None = None,
        limit: int = DEFAULT_LIST_LIMIT,
    ) -> builtins.list[ObjectInfo]:
        """Return up to ``limit`` objects under ``prefix`` after ``start_after``, by key."""
        validate_bucket_name(bucket)
        validate_prefix(prefix)
        if start_after is not None:
            validate_prefix(start_after, what="start_after")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit must be a positive integer, got {limit!r}", limit=limit)
        found: builtins.list[ObjectInfo] = []
        for item in self._iter_listing(bucket, prefix, start_after, page=limit):
            # Keys our rules refuse (written by other tools) could not be read back; skip them.
            if not _is_key(item["Key"]):
                continue
            found.append(
                ObjectInfo(
                    bucket=bucket,
                    key=item["Key"],
                    size=int(item["Size"]),
                    etag=_etag(item["ETag"]),
                    last_modified=_utc(item["LastModified"]),
                    content_type=None,
                )
            )
            if len(found) >= limit:
                break
        return found

    def _iter_listing(
        self, bucket: str, prefix: str, start_after: str | None, *, page: int
    ) -> Iterator[dict[str, Any]]:
        """Yield ListObjectsV2 entries in key order, following continuation tokens."""
        kwargs: dict[str, Any] = {
            "Bucket": bucket,
            "Prefix": prefix,
            "MaxKeys": min(page, DEFAULT_LIST_LIMIT),
        }
        if start_after is not None:
            kwargs["StartAfter"] = start_after
        while True:
            with _translated(bucket=bucket):
                response = self._client.list_objects_v2(**kwargs)
            yield from response.get("Contents", [])
            if not response.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = response["NextContinuationToken"]


def _info_from_head(bucket: str, key: str, response: dict[str, Any]) -> ObjectInfo:
    return ObjectInfo(
        bucket=bucket,
        key=key,
        size=int(response["ContentLength"]),
        etag=_etag(response["ETag"]),
        last_modified=_utc(response["LastModified"]),
        content_type=response.get("ContentType") or DEFAULT_CONTENT_TYPE,
    )


def _is_key(key: str) -> bool:
    try:
        validate_key(key)
    except InvalidInput:
        return False
    return True


def _etag(raw: str) -> str:
    return raw.strip('"').lower()


def _utc(value: datetime) -> datetime:
    # botocore gives aware datetimes in its own tzutc; normalise to datetime.UTC.
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


@contextlib.contextmanager
def _translated(
    *,
    bucket: str | None = None,
    key: str | None = None,
    ignore: frozenset[str] | set[str] = frozenset(),
) -> Iterator[None]:
    """Turn botocore's exceptions raised inside the block into modelplane errors."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in ignore:
            return
        _raise_for_code(code, str(error.get("Message") or code), bucket, key, exc)
    except NoCredentialsError as exc:
        raise Unauthenticated(
            "no S3 credentials found", hint="give access_key and secret_key, or set AWS_* vars"
        ) from exc
    except (ReadTimeoutError, ConnectTimeoutError) as exc:
        raise Timeout(f"the S3 server did not answer in time: {exc}") from exc
    except EndpointConnectionError as exc:
        raise Unavailable(f"cannot reach the S3 server: {exc}", retry_after=5.0) from exc
    except BotoConnectionError as exc:  # the connection dropped mid-request: the same outage
        raise Unavailable(f"lost the connection to the S3 server: {exc}", retry_after=5.0) from exc
    except BotoCoreError as exc:
        raise ModelplaneError(f"S3 request failed: {exc}") from exc


def _raise_for_code(
    code: str, message: str, bucket: str | None, key: str | None, exc: Exception
) -> NoReturn:
    where = {k: v for k, v in (("bucket", bucket), ("key", key)) if v is not None}
    if code in _NOT_FOUND_CODES:
        if code == "NoSuchBucket" or key is None:
            raise NotFound(f"bucket {bucket!r} does not exist", **where) from exc
        # A bare 404 (HEAD has no body) may also mean the bucket is missing; say both.
        raise NotFound(f"object {key!r} does not exist in bucket {bucket!r}", **where) from exc
    if code == "BucketNotEmpty":
        raise AlreadyExists(
            f"bucket {bucket!r} is not empty", hint="delete its objects or pass force=True", **where
        ) from exc
    if code in _CONFLICT_CODES:
        raise AlreadyExists(f"S3 refused the request ({code}): {message}", **where) from exc
    if code in _FORBIDDEN_CODES:
        raise Forbidden(f"S3 denied access ({code}): {message}", **where) from exc
    if code in _UNAUTHENTICATED_CODES:
        raise Unauthenticated(f"S3 rejected the credentials ({code}): {message}") from exc
    if code in _INVALID_CODES:
        raise InvalidInput(f"S3 refused the request ({code}): {message}", **where) from exc
    if code == "EntityTooLarge":
        raise PayloadTooLarge(f"object too large for S3: {message}", **where) from exc
    if code in _UNAVAILABLE_CODES:
        raise Unavailable(
            f"S3 is busy or failing ({code}): {message}", retry_after=1.0, **where
        ) from exc
    raise ModelplaneError(f"S3 request failed ({code}): {message}", **where) from exc
