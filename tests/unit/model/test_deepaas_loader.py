"""The DEEPaaS loader: finding the module, fields -> JSON Schema, the adapter."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from modelplane.errors import InvalidSpec
from modelplane.model.contract import FileInput, FileOutput
from modelplane.model.deepaas import (
    LOADER,
    DeepaasCall,
    DeepaasOutput,
    UploadedFile,
    declared_entry_points,
    object_schema,
    resolve,
)
from modelplane.model.loader import get_loader, load_model

ma = pytest.importorskip("marshmallow", reason="DEEPaaS modules need marshmallow/webargs")
fields, validate = ma.fields, ma.validate

MODULE = """
from marshmallow import fields, validate
CALLS = []
def get_metadata():
    return {"id": "1", "name": "m", "description": "a test", "version": "2.1"}
def warm():
    CALLS.append("warm")
def get_predict_args():
    return {
        "f": fields.Raw(required=True, metadata={"type": "file", "location": "form"}),
        "n": fields.Int(load_default=2),
        "accept": fields.Str(validate=validate.OneOf(["application/json", "text/plain"])),
    }
def predict(**kw):
    f = kw["f"]
    with open(f.filename, "rb") as fh:
        data = fh.read()
    CALLS.append(f.filename)
    if kw.get("accept") == "text/plain":
        return data * kw["n"]
    return {"n": kw["n"], "name": f.name, "orig": f.original_filename, "type": f.content_type,
            "data": data.decode()}
"""


def test_fields_become_json_schema() -> None:
    schema = object_schema(
        {
            "count": fields.Int(
                required=True,
                validate=validate.Range(min=1, max=10),
                metadata={"description": "how many"},
            ),
            "kind": fields.Str(load_default="a", validate=validate.OneOf(["a", "b"])),
            "ratio": fields.Float(allow_none=True),
            "flag": fields.Bool(),
            "day": fields.Date(),
            "tags": fields.List(fields.Str(), validate=validate.Length(max=3)),
            "image": fields.Raw(metadata={"type": "file", "location": "form"}, required=True),
            "nested": fields.Nested({"x": fields.Int(required=True)}),
            "legacy": fields.Str(metadata={"enum": ["p", "q"]}),
            "renamed": fields.Str(data_key="other-name"),
        }
    )
    props = schema["properties"]
    assert schema["required"] == ["count", "image"]
    assert props["count"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 10,
        "description": "how many",
    }
    assert props["kind"] == {"type": "string", "enum": ["a", "b"], "default": "a"}
    assert props["ratio"] == {"type": ["number", "null"]}
    assert props["flag"] == {"type": "boolean"}
    assert props["day"] == {"type": "string", "format": "date"}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "maxItems": 3}
    assert props["image"] == {"type": "string", "format": "binary", "x-deepaas-location": "form"}
    assert props["nested"] == {
        "type": "object",
        "properties": {"x": {"type": "integer"}},
        "required": ["x"],
    }
    assert props["legacy"]["enum"] == ["p", "q"]
    assert "other-name" in props
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_shipped_deepaas_test_model_schema() -> None:
    test = pytest.importorskip("deepaas.model.v2.test", reason="deepaas is not installed")
    schema = object_schema(test.TestModel().get_predict_args())
    assert schema["required"] == ["data", "parameter"]
    assert schema["properties"]["parameter"]["type"] == "integer"
    assert schema["properties"]["parameter_three"]["enum"] == ["foo", "bar"]
    assert schema["properties"]["accept"]["x-deepaas-location"] == "headers"


def _module_folder(tmp_path: Path, name: str, declare: str | None = "dist") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / f"{name}_mod.py").write_text(MODULE)
    if declare == "dist":
        info = folder / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[deepaas.v2.model]\n{name} = {name}_mod\n")
    elif declare == "setup.cfg":
        (folder / "setup.cfg").write_text(
            f"[metadata]\nname = {name}\n\n[entry_points]\ndeepaas.v2.model =\n"
            f"    {name}-ep = {name}_mod\n"
        )
    elif declare == "pyproject":
        (folder / "pyproject.toml").write_text(
            f'[project]\nname = "{name}"\n\n'
            f'[project.entry-points."deepaas.v2.model"]\n{name}_pp = "{name}_mod"\n'
        )
    return folder


def test_entry_points_are_found_without_imports(tmp_path: Path) -> None:
    assert declared_entry_points(_module_folder(tmp_path, "dpa")) == {"dpa": "dpa_mod"}
    assert declared_entry_points(_module_folder(tmp_path, "dpb", "setup.cfg")) == {
        "dpb-ep": "dpb_mod"
    }
    assert declared_entry_points(_module_folder(tmp_path, "dpc", "pyproject")) == {
        "dpc_pp": "dpc_mod"
    }
    folder = tmp_path / "dpa"
    assert LOADER.detect(folder, None) and LOADER.detect(folder, "dpa")
    assert not LOADER.detect(tmp_path / "dpd-missing", None)
    assert type(get_loader("auto", folder, None)).__name__ == "DeepaasLoader"
    target = resolve(folder, None)
    assert (target.module, target.attr, target.entry_point) == ("dpa_mod", None, "dpa")
    target = resolve(folder, "os.path:join")
    assert (target.module, target.attr, target.entry_point) == ("os.path", "join", None)


def test_check_reports_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # other tests put model folders (with entry points) on sys.path
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "site-packages" in p])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidSpec, match=r"entry points\) declared in the folder|installed"):
        LOADER.check(empty, None)
    with pytest.raises(InvalidSpec, match="no module 'nosuchmodule_xyz'"):
        LOADER.check(empty, "nosuchmodule_xyz")
    with pytest.raises(InvalidSpec, match="not a folder"):
        LOADER.check(tmp_path / "nope", "x")
    LOADER.check(_module_folder(tmp_path, "dpe"), None)


def test_load_warms_once_and_adapts_predict(tmp_path: Path) -> None:
    folder = _module_folder(tmp_path, "dpf")
    model = load_model(folder, None, "deepaas")
    module: Any = model.instance.obj
    assert model.metadata.name == "dpf"
    assert model.metadata.version == "2.1"
    assert model.metadata.description == "a test"
    assert model.metadata.input_schema["properties"]["accept"]["enum"] == [
        "application/json",
        "text/plain",
        "*/*",
    ]
    assert model.metadata.extra["deepaas"]["metadata"]["id"] == "1"
    assert module.CALLS == []
    model.load()
    assert module.CALLS == ["warm"]
    # native inputs: an uploaded file becomes DEEPaaS's UploadedFile on a temporary path
    out = model.call({"f": FileInput("f", "a.txt", "text/plain", b"hi")})
    assert out == {"n": 2, "name": "f", "orig": "a.txt", "type": "text/plain", "data": "hi"}
    temp = module.CALLS[-1]
    assert os.path.isabs(temp) and not os.path.exists(temp)  # removed after predict
    raw = model.call({"f": FileInput("f", "a.txt", "text/plain", b"hi"), "accept": "text/plain"})
    assert raw == FileOutput(b"hihi", "text/plain")  # `accept` decides the content type
    # the DEEPaaS front's calls
    call = DeepaasCall("predict", {"f": FileInput("f", "b", "x/y", b"z"), "n": 1}, "*/*")
    result = model.call(call)
    assert isinstance(result, DeepaasOutput) and result.accept == "*/*"
    assert result.value["orig"] == "b"
    assert model.call(DeepaasCall("models"))["name"] == "m"


def test_module_class_and_name_fallbacks(tmp_path: Path) -> None:
    (tmp_path / "dpg_cls.py").write_text(
        "class Model:\n    name = 'my-model'\n    def predict(self, **kw):\n        return kw\n"
    )
    model = load_model(tmp_path, "dpg_cls:Model", "deepaas")
    assert model.metadata.name == "my-model"
    assert model.call({"x": 1}) == {}  # only declared arguments reach predict
    meta = model.instance.get_metadata()
    assert meta["name"] == "my-model" and meta["id"] == "0"
    with pytest.raises(InvalidSpec, match="has no 'Nope'"):
        load_model(tmp_path, "dpg_cls:Nope", "deepaas")


def test_uploaded_file_has_deepaas_fields() -> None:
    assert UploadedFile._fields == ("name", "filename", "content_type", "original_filename")
    assert UploadedFile() == (None, None, None, None)
