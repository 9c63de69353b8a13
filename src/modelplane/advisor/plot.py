"""A picture of the simulated day: replicas and p99 latency over time, one line per option.

matplotlib (the ``plot`` extra) draws it, PNG or SVG by the file's suffix. The trade-off: it is a
large dependency for one figure, but it writes both formats, is what users of this field already
have, and keeps drawing code out of this package; the same figures are in the JSON output for the
dashboard, which draws them itself. It is imported only when a plot is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelplane.errors import InvalidInput

__all__ = ["check", "render"]

FORMATS = (".png", ".svg")


def check(path: Path) -> None:
    """Raise before any work is done if ``path`` cannot be drawn (suffix, matplotlib)."""
    if path.suffix.lower() not in FORMATS:
        raise InvalidInput(f"--plot {path}: the file must end in .png or .svg")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InvalidInput(
            "plotting needs matplotlib",
            hint="pip install 'modelplane[plot]' (or drop --plot; --json has the same figures)",
        ) from None


def render(advice: dict[str, Any], path: Path) -> Path:
    """Draw ``advice`` (as :meth:`Advice.to_dict` gives it) into ``path`` (.png or .svg)."""
    check(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # export repeats the serverless figures (same policy): one line is enough
    options = [o for o in advice["options"] if o.get("timeline") and o["option"] != "export"]
    if not options:
        raise InvalidInput("nothing to plot: one-off dataset options have no timeline")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    for o in options:
        tl = o["timeline"]
        hours = [t / 3600 for t in tl["t"]]
        label = o["option"]
        top.step(hours, tl["replicas_mean"], where="post", label=label)
        p99 = [float("nan") if v is None else v for v in tl["p99_ms"]]
        bottom.plot(hours, p99, marker=".", linewidth=1, label=label)
    slo = advice.get("traffic", {}).get("latency_slo_ms")
    if slo:
        bottom.axhline(slo, color="red", linestyle="--", linewidth=1, label="p99 target")
    top.set_ylabel("replicas (mean per bucket)")
    bottom.set_ylabel("p99 latency (ms)")
    bottom.set_yscale("log")
    bottom.set_xlabel("simulated time (hours)")
    rec = advice["recommendation"]
    top.set_title(f"recommended: {rec['option']} — simulated traffic")
    top.legend(loc="upper right", fontsize="small")
    bottom.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
