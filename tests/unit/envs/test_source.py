from __future__ import annotations

from pathlib import Path

from modelplane.envs.source import env_key, find_source, python_tag


def test_folders_without_requirements_keep_the_fast_path(tmp_path: Path) -> None:
    assert find_source(tmp_path) is None
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    assert find_source(tmp_path) is None  # tool settings only: nothing to install


def test_requirements_and_packages_are_sources(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("httpx==0.23.0\n")
    src = find_source(tmp_path)
    assert src is not None and src.requirements and not src.package
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "m"\nversion = "1"\n')
    src = find_source(tmp_path)
    assert src is not None and src.requirements and src.package
    setup = tmp_path / "pkg"
    setup.mkdir()
    (setup / "setup.py").write_text("from setuptools import setup\nsetup(name='x')\n")
    found = find_source(setup)
    assert found is not None and found.package and not found.requirements


def test_the_key_depends_on_requirements_and_python_not_on_the_folder(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for folder, req in ((a, "httpx==0.23.0\n"), (b, "httpx==0.23.0\n"), (c, "httpx==0.24.0\n")):
        folder.mkdir()
        (folder / "requirements.txt").write_text(req)
    sa, sb, sc = (find_source(f) for f in (a, b, c))
    assert sa is not None and sb is not None and sc is not None
    py = python_tag((3, 11, 7), "cpython")
    assert py == "cpython-3.11.7"
    assert env_key(sa, py) == env_key(sb, py)
    assert env_key(sa, py) != env_key(sc, py)
    assert env_key(sa, py) != env_key(sa, python_tag((3, 12, 1), "cpython"))
    assert len(env_key(sa, py)) == 16
