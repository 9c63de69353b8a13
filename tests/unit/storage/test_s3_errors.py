"""botocore errors become modelplane errors at the S3 store boundary (injected client)."""

from __future__ import annotations

from typing import Any

import pytest

from modelplane.errors import (
    AlreadyExists,
    Forbidden,
    InvalidInput,
    ModelplaneError,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from modelplane.storage import S3BucketStore

botocore_exceptions = pytest.importorskip("botocore.exceptions", reason="boto3 is not installed")


class FailingClient:
    """An S3 client whose every call fails with the error code it was built with."""

    def __init__(self, code: str, status: int) -> None:
        self.code = code
        self.status = status
        self.calls: list[str] = []

    def __getattr__(self, operation: str) -> Any:
        def call(**kwargs: Any) -> Any:
            self.calls.append(operation)
            raise botocore_exceptions.ClientError(
                {
                    "Error": {"Code": self.code, "Message": f"{self.code} happened"},
                    "ResponseMetadata": {"HTTPStatusCode": self.status},
                },
                operation,
            )

        return call


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchBucket", 404, NotFound),
        ("NoSuchKey", 404, NotFound),
        ("404", 404, NotFound),
        ("AccessDenied", 403, Forbidden),
        ("InvalidAccessKeyId", 403, Unauthenticated),
        ("SlowDown", 503, Unavailable),
        ("BucketNotEmpty", 409, AlreadyExists),
        ("KeyTooLongError", 400, InvalidInput),
        ("SomethingNew", 500, ModelplaneError),
    ],
)
def test_client_errors_are_translated(code: str, status: int, expected: type[Exception]) -> None:
    store = S3BucketStore(client=FailingClient(code, status))

    with pytest.raises(expected) as caught:
        store.get("bkt", "k")

    assert type(caught.value) is expected
    assert isinstance(caught.value.__cause__, botocore_exceptions.ClientError)


def test_missing_key_message_names_bucket_and_key() -> None:
    store = S3BucketStore(client=FailingClient("NoSuchKey", 404))
    with pytest.raises(NotFound, match="object 'in/x' does not exist in bucket 'bkt'") as caught:
        store.get("bkt", "in/x")
    assert caught.value.fields == {"bucket": "bkt", "key": "in/x"}


def test_connection_failures_are_unavailable() -> None:
    class Unreachable:
        def head_object(self, **kwargs: Any) -> Any:
            raise botocore_exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    with pytest.raises(Unavailable, match="cannot reach the S3 server"):
        S3BucketStore(client=Unreachable()).head("bkt", "k")


def test_already_owned_bucket_is_fine_to_create() -> None:
    client = FailingClient("BucketAlreadyOwnedByYou", 409)
    S3BucketStore(client=client, region="us-east-1").create_bucket("bkt")
    assert client.calls == ["create_bucket"]


def test_invalid_keys_never_reach_the_client() -> None:
    client = FailingClient("NoSuchKey", 404)
    with pytest.raises(InvalidInput):
        S3BucketStore(client=client).get("bkt", "../etc/passwd")
    assert client.calls == []


def test_constructor_does_not_build_a_client() -> None:
    store = S3BucketStore(endpoint_url="http://127.0.0.1:1", region="us-east-1")
    assert "S3BucketStore" in repr(store)
    assert store._client_instance is None
