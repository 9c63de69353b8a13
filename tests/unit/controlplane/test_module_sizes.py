"""The control plane stays in modules of one concept each: none grows past 400 lines (issue 9;
split a cohesive part into its own module, as bootstrap.py, hooks.py and lifecycle.py were)."""

from __future__ import annotations

from pathlib import Path

import modelplane.controlplane

LIMIT = 400


def test_no_control_plane_module_is_over_400_lines() -> None:
    root = Path(modelplane.controlplane.__file__).parent
    sizes = {
        str(path.relative_to(root)): len(path.read_text().splitlines())
        for path in root.rglob("*.py")
    }
    assert sizes, root
    assert {name: n for name, n in sizes.items() if n > LIMIT} == {}
