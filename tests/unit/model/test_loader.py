from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from modelplane.errors import InvalidInput, InvalidSpec
from modelplane.model import FileOutput, load_model, read_manifest
from modelplane.model.contract import ModelMetadata, encode_output


def test_reads_manifest_without_importing(examples: Path) -> None:
    m = read_manifest(examples / "digits")
    assert m.entrypoint == "digits_model:DigitsModel"
    assert m.metadata.accepts == ("application/json", "image/png", "image/jpeg")
    assert m.metadata.input_schema["required"] == ["image"]


def test_missing_manifest_and_bad_fields(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match=r"no modelplane\.yaml"):
        read_manifest(tmp_path)
    (tmp_path / "modelplane.yaml").write_text("entrypoint: nocolon\n")
    with pytest.raises(InvalidSpec, match="module:Class"):
        read_manifest(tmp_path)
    (tmp_path / "modelplane.yaml").write_text("entrypoint: a:B\nflavour: x\n")
    with pytest.raises(InvalidSpec, match="unknown field"):
        read_manifest(tmp_path)
    with pytest.raises(InvalidSpec, match="not a folder"):
        read_manifest(tmp_path / "nope")


def test_missing_class_is_reported(tmp_path: Path) -> None:
    (tmp_path / "modelplane.yaml").write_text("entrypoint: m_missing_cls:Nope\n")
    (tmp_path / "m_missing_cls.py").write_text("class Other: pass\n")
    with pytest.raises(InvalidSpec, match=r"has no 'Nope'"):
        load_model(tmp_path)


def test_sync_and_async_models_adapted_once(examples: Path, fixture_models: Path) -> None:
    echo = load_model(examples / "echo")
    echo.load()
    assert not echo.is_async and echo.call({"a": 1}) == {"a": 1}
    aecho = load_model(fixture_models / "asyncecho")
    assert aecho.is_async
    assert asyncio.run(aecho.call({"b": 2})) == {"b": 2}


def test_schema_validation(examples: Path) -> None:
    digits = load_model(examples / "digits")
    digits.validate({"image": [[0] * 8] * 8})
    with pytest.raises(InvalidInput, match="image/0"):
        digits.validate({"image": [[0] * 7] + [[0] * 8] * 7})


def test_accepts_patterns() -> None:
    md = ModelMetadata(name="m", accepts=("image/*", "text/csv"))
    assert md.accepts_type("image/png") and md.accepts_type("text/csv; charset=utf-8")
    assert not md.accepts_type("application/json")


def test_encode_output() -> None:
    import numpy as np

    assert encode_output({"a": np.arange(3)}) == (b'{"a":[0,1,2]}', "application/json")
    assert encode_output(b"\x00") == (b"\x00", "application/octet-stream")
    assert encode_output(FileOutput(b"png", "image/png")) == (b"png", "image/png")
    assert encode_output({1, 2})[0] in (b"[1,2]", b"[2,1]")
    with pytest.raises(TypeError):
        encode_output(object())
