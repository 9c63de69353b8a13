"""Path and query parameters as the OpenAPI document states them.

The domain checks these values itself (with messages that name the value and the rule, as 400s);
here the same rules are only *stated* in the document (``json_schema_extra``), so a client
generated from it, or a fuzzer, sends what the API accepts, and FastAPI does not check them a
second time with other words.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

from modelplane.spec.deployment import NAME_SCHEMA
from modelplane.storage.keys import BUCKET_SCHEMA, KEY_SCHEMA, PREFIX_SCHEMA

USER_PATTERN = r"^[a-z0-9]([-a-z0-9_.]{0,62}[a-z0-9])?$"
USER_SCHEMA: dict[str, Any] = {"minLength": 1, "maxLength": 64, "pattern": USER_PATTERN}

DeploymentName = Annotated[str, Path(json_schema_extra=NAME_SCHEMA)]
BucketName = Annotated[str, Path(json_schema_extra=BUCKET_SCHEMA)]
ObjectKey = Annotated[str, Path(json_schema_extra=KEY_SCHEMA)]
UserName = Annotated[str, Path(json_schema_extra=USER_SCHEMA)]
Prefix = Annotated[str, Query(json_schema_extra=PREFIX_SCHEMA)]
OptionalPrefix = Annotated[str | None, Query(json_schema_extra=PREFIX_SCHEMA)]
