"""Whatever a model returns or raises becomes one precise reply; the predictor keeps serving."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from modelplane.errors import InvalidInput
from modelplane.model.loader import load_model
from modelplane.worker.reply import error_body
from modelplane.worker.server import Predictor

FAULTY = Path(__file__).resolve().parents[2] / "fixtures" / "models" / "faulty"


async def ask(predictor: Predictor, body: Any) -> tuple[int, bytes, bytes]:
    got: list[tuple[int, bytes, bytes]] = []
    predictor.submit(b"application/json", orjson.dumps(body), lambda s, c, b: got.append((s, c, b)))
    await asyncio.sleep(0)
    assert len(got) == 1, got
    return got[0]


@pytest.fixture
async def predictor() -> Predictor:
    model = load_model(FAULTY, None, "auto")
    model.load()
    return Predictor(model)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("int_keys", {"0": ["Not a valid number."], "1": {"2": "deep"}}),
        ("set", {"labels": [3]}),
        ("nan", {"score": None, "inf": None}),
    ],
)
async def test_values_json_can_hold_are_sent_as_python_json_would(
    predictor: Predictor, kind: str, expected: Any
) -> None:
    status, ctype, body = await ask(predictor, {"misbehave": kind})
    assert (status, ctype) == (200, b"application/json")
    assert orjson.loads(body) == expected


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("object", "cannot be sent as JSON: Type is not JSON serializable: object"),
        ("cycle", "cannot be sent as JSON: Recursion limit reached"),
        ("tolist", "serializable: BadList (RuntimeError: tolist exploded)"),
        ("broken_str", "raised BrokenStr: <BrokenStr whose str() raised RuntimeError>"),
        ("system_exit", "raised SystemExit: 4"),
        ("keyboard", "raised KeyboardInterrupt"),
    ],
)
async def test_what_cannot_be_sent_is_a_500_naming_it_and_the_next_request_is_served(
    predictor: Predictor, kind: str, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, body = await ask(predictor, {"misbehave": kind})
    assert status == 500
    err = orjson.loads(body)
    assert err["error"] == "model_error"
    assert words in err["message"]
    assert "Traceback (most recent call last)" in capsys.readouterr().err
    status, _, body = await ask(predictor, {})
    assert status == 200 and orjson.loads(body)["ok"] is True


async def test_a_50_mb_string_is_sent_whole(predictor: Predictor) -> None:
    status, _, body = await ask(predictor, {"misbehave": "big"})
    assert status == 200 and len(body) == 50 * 2**20 + 2


async def test_a_reply_over_the_limit_is_a_500_with_its_size() -> None:
    model = load_model(FAULTY, None, "auto")
    small = Predictor(model, max_reply=2**20)
    status, _, body = await ask(small, {"misbehave": "big"})
    assert status == 500
    assert (
        "returned 50.0 MiB, over the replica's reply limit of 1 MiB"
        in orjson.loads(body)["message"]
    )


def test_an_error_body_with_integer_keys_is_encoded() -> None:
    class Odd(InvalidInput):
        def to_dict(self) -> dict[str, Any]:
            return {0: ["Not a valid number."], "x": object()}

    body = orjson.loads(error_body(Odd("bad list")))
    assert body == {"error": "invalid_input", "message": "bad list"}


def test_an_error_body_with_integer_keys_only_keeps_them_as_strings() -> None:
    class Keys(InvalidInput):
        def to_dict(self) -> dict[str, Any]:
            return {"demo": {0: ["Not a valid number."]}}

    assert orjson.loads(error_body(Keys("x"))) == {"demo": {"0": ["Not a valid number."]}}
