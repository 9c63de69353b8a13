"""Every target's files for every case, compared with the golden copies under golden/.

Regenerate after an intended change with ``MODELPLANE_UPDATE_GOLDEN=1 pytest this file`` and
review the diff like code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.unit.backends.export.cases import CASES

from modelplane import __version__
from modelplane.backends.export import TARGETS, render
from modelplane.backends.export.bundle import spec_digest

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("MODELPLANE_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("case", list(CASES))
def test_rendered_files_match_the_golden_copies(case: str, target: str) -> None:
    c = CASES[case]
    bundle = render(c.spec, target, c.options())
    folder = GOLDEN / case / target
    if UPDATE:
        for old in folder.rglob("*") if folder.exists() else []:
            if old.is_file():
                old.unlink()
        for rel, text in bundle.files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text)
    expected = {
        p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*") if p.is_file()
    }
    assert sorted(bundle.files) == sorted(expected)
    for rel, text in bundle.files.items():
        assert text == expected[rel], f"{case}/{target}/{rel} differs from its golden copy"
    assert bundle.copies == {"model": c.spec.model.path}


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("case", list(CASES))
def test_every_document_names_the_version_and_the_spec(case: str, target: str) -> None:
    c = CASES[case]
    bundle = render(c.spec, target, c.options())
    for rel, text in bundle.files.items():
        head = "\n".join(text.splitlines()[:3])
        assert f"modelplane {__version__}" in head, rel
        assert spec_digest(c.spec) in head and repr(c.spec.name) in head, rel


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("case", list(CASES))
def test_every_warning_is_written_into_the_readme(case: str, target: str) -> None:
    c = CASES[case]
    bundle = render(c.spec, target, c.options(image=None))
    readme = bundle.files["README.md"]
    section = readme.split("## What this target cannot express", 1)[1].split("## Files", 1)[0]
    if not bundle.warnings:
        assert target == "image" and c.facts.requirements  # no other target is that complete
        assert section.strip() == "Nothing: every field of the spec is carried over."
    else:
        assert [line[2:] for line in section.strip().splitlines()] == bundle.warnings
