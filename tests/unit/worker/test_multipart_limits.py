"""A multipart body with too many parts is a 413 before any part reaches the model."""

from __future__ import annotations

import pytest

from modelplane.errors import PayloadTooLarge
from modelplane.fronts.multipart import MAX_PARTS, multipart_parts

CT = "multipart/form-data; boundary=xyz"


def body(n: int) -> bytes:
    part = b'--xyz\r\nContent-Disposition: form-data; name="f"\r\n\r\nv\r\n'
    return part * n + b"--xyz--\r\n"


def test_parts_up_to_the_limit_are_parsed() -> None:
    assert len(multipart_parts(body(MAX_PARTS), CT)) == MAX_PARTS


def test_one_part_over_the_limit_is_413() -> None:
    with pytest.raises(PayloadTooLarge) as info:
        multipart_parts(body(MAX_PARTS + 1), CT)
    assert info.value.status == 413
    assert f"more than {MAX_PARTS} parts" in info.value.message
