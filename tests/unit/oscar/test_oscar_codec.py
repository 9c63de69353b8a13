"""OSCAR's event bodies and answers (pure)."""

from __future__ import annotations

import base64

import pytest

from modelplane.model.oscar import LOG_CONTENT_TYPE
from modelplane.oscar.invoke import decode_event, encode_result


def test_base64_bodies_are_decoded() -> None:
    event = decode_event(base64.b64encode(b"\x00binary\xff") + b"\n", script=True)
    assert event.data == b"\x00binary\xff"
    assert event.content_type == "application/octet-stream"


def test_json_bodies_pass_as_they_are() -> None:
    assert decode_event(b'{"a": 1}', script=True).data == b'{"a": 1}'
    assert decode_event(b'{"a": 1}', script=True).content_type == "application/octet-stream"
    assert decode_event(b"[1, 2]", script=False).content_type == "application/json"


@pytest.mark.parametrize("body", [b"not base64!", b"", b"{broken json"])
def test_other_bodies_pass_raw(body: bytes) -> None:
    assert decode_event(body, script=True).data == body


def test_script_files_are_answered_in_base64_and_logs_as_text() -> None:
    answer = encode_result(200, "image/png", b"\x89PNG", script=True)
    assert base64.b64decode(answer.body) == b"\x89PNG"
    assert answer.content_type.startswith("text/plain")
    answer = encode_result(200, "application/json", b"{}", script=True)
    assert answer.body == base64.b64encode(b"{}")
    answer = encode_result(200, LOG_CONTENT_TYPE, b"hello\n", script=True)
    assert answer.body == b"hello\n"


def test_model_services_answer_json_and_text_as_they_are() -> None:
    assert encode_result(200, "application/json", b"[1]", script=False).body == b"[1]"
    assert encode_result(200, "text/csv", b"a,b", script=False).body == b"a,b"
    assert encode_result(200, "image/png", b"\x89", script=False).body == b"iQ=="


def test_errors_pass_through() -> None:
    answer = encode_result(500, "application/json", b'{"error": "model_failed"}', script=True)
    assert answer.status == 500 and answer.body == b'{"error": "model_failed"}'
