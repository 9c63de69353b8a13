"""Buckets of objects: the seam asynchronous jobs read inputs from and write results to.

One interface, :class:`BucketStore`, and its implementations: :class:`LocalBucketStore`
(folders on the local filesystem, the default) and :class:`S3BucketStore` (AWS S3, MinIO and
other S3 servers; needs boto3, imported on first use). Key rules live in :mod:`.keys`, location
parsing for batch runs in :mod:`.uri`.
"""

from __future__ import annotations

from modelplane.storage.base import (
    DEFAULT_CONTENT_TYPE,
    DEFAULT_LIST_LIMIT,
    BucketStore,
    ObjectInfo,
    PutData,
)
from modelplane.storage.keys import (
    MAX_KEY_BYTES,
    validate_bucket_name,
    validate_content_type,
    validate_key,
    validate_prefix,
)
from modelplane.storage.local import LocalBucketStore
from modelplane.storage.s3 import S3BucketStore
from modelplane.storage.uri import LocalLocation, Location, S3Location, parse_location

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "DEFAULT_LIST_LIMIT",
    "MAX_KEY_BYTES",
    "BucketStore",
    "LocalBucketStore",
    "LocalLocation",
    "Location",
    "ObjectInfo",
    "PutData",
    "S3BucketStore",
    "S3Location",
    "parse_location",
    "validate_bucket_name",
    "validate_content_type",
    "validate_key",
    "validate_prefix",
]
