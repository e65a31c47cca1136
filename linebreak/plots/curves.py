"""Line plots across depth: held-out probe R^2 by layer, and the similarity-peak width by layer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from linebreak.plots.common import new_figure, save_png

if TYPE_CHECKING:
    from linebreak.probe.result import ProbeResult

PROBES = [("count", "character count (word tokens)"), ("line_width", "line width (at newline tokens)"),
          ("remaining", "characters remaining"), ("width", "wrap width (line 2 on)")]


def _series(runs: dict, get) -> dict:
    return {run: (list(res.layers), [get(r) for r in res.layers.values()]) for run, res in runs.items()}


def r2_by_layer(runs: dict[str, ProbeResult], title: str, out: str | Path) -> Path:
    """``runs`` maps a run name (model, control) to its probe result; one line per probe and run."""
    fig, ax = new_figure(figsize=(7, 4))
    for i, (name, label) in enumerate(PROBES):
        for run, (keys, ys) in _series(runs, lambda r, n=name: r.probes[n].r2_test).items():
            ys = [float("nan") if y is None else y for y in ys]
            ax.plot(keys, ys, marker="o", color=f"C{i}", ls="-" if run == "model" else ":",
                    label=f"{label}" + ("" if run == "model" else f" [{run}]"))
    ax.set_ylabel("held-out R^2 (ridge)")
    ax.set_xlabel("activation site . layer")
    ax.set_ylim(-0.1, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.tick_params(axis="x", rotation=30)
    return save_png(fig, Path(out).with_name(Path(out).name + ".png"))


def peak_width_by_layer(runs: dict[str, ProbeResult], title: str, out: str | Path) -> Path:
    fig, ax = new_figure(figsize=(7, 3.5))
    for what, ls in (("centroids", "-"), ("count_probes", "--")):
        for run, (keys, ys) in _series(runs, lambda r, w=what: getattr(r, w).peak_width).items():
            ax.plot(keys, ys, marker="o", ls=ls if run == "model" else ":", label=f"{what} [{run}]")
    ax.set_ylabel("similarity peak width (counts)")
    ax.set_xlabel("activation site . layer")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.tick_params(axis="x", rotation=30)
    return save_png(fig, Path(out).with_name(Path(out).name + ".png"))
