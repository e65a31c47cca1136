"""Figures of the paper's toy models (:mod:`linebreak.probe.toys`): where ringing comes from.

* :func:`embeddings_figure`: toy embeddings in their top-3 PCs, one 3D panel each, coloured by count;
* :func:`similarity_figure`: their cosine matrices over counts, with the mean similarity by lag beneath
  and the dead zone of the ringing gate (:mod:`linebreak.probe.ringing`) shaded;
* :func:`counts_figure`: a ringing number (ripples, sign changes, peak width) against a setting, one line per
  series, with the spread over seeds where there are several.

Every number drawn is passed in; nothing here computes geometry.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from linebreak.plots.common import new_figure, save_png


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 3)
    return (n + cols - 1) // cols, cols


def embeddings_figure(panels: list[dict], title: str, out: str | Path) -> Path:
    """One 3D panel per ``{"coords": [V, 3], "ratio": PC variance shares, "title": str}``, points joined in count
    order and coloured by count. Written to ``out`` (a full ``.png`` name)."""
    rows, cols = _grid(len(panels))
    fig, _ = new_figure(figsize=(4.2 * cols, 3.9 * rows))
    fig.clf()
    for i, p in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1, projection="3d")
        xyz = np.asarray(p["coords"])[:, :3]
        if xyz.shape[1] < 3:
            xyz = np.pad(xyz, ((0, 0), (0, 3 - xyz.shape[1])))
        ax.plot(*xyz.T, color="0.6", lw=0.7)
        ax.scatter(*xyz.T, c=np.arange(len(xyz)), cmap="viridis", s=9, depthshade=False)
        r = list(p["ratio"]) + [0.0] * 3
        ax.set_xlabel(f"PC1 {100 * r[0]:.0f}%", fontsize=7)
        ax.set_ylabel(f"PC2 {100 * r[1]:.0f}%", fontsize=7)
        ax.set_zlabel(f"PC3 {100 * r[2]:.0f}%", fontsize=7)
        ax.tick_params(labelsize=5)
        ax.set_title(p["title"], fontsize=8)
    fig.suptitle(title, fontsize=10)
    return save_png(fig, out)


def similarity_figure(panels: list[dict], dead_zone: float, title: str, out: str | Path) -> Path:
    """Cosine heatmaps, one column per ``{"cos": [V, V], "profile": lag profile, "title": str}``, with the
    lag profile under each and the band ``|profile| < dead_zone`` shaded (what the gate does not count)."""
    n = len(panels)
    fig, axes = new_figure(2, n, figsize=(3.3 * n, 4.8), gridspec_kw={"height_ratios": [3, 1.3]}, squeeze=False)
    for j, p in enumerate(panels):
        ax, ax2 = axes[0, j], axes[1, j]
        im = ax.imshow(p["cos"], cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(p["title"], fontsize=8)
        ax.set_xlabel("count", fontsize=7)
        ax.set_ylabel("count", fontsize=7)
        ax.tick_params(labelsize=6)
        prof = np.asarray(p["profile"])
        ax2.axhspan(-dead_zone, dead_zone, color="0.9")
        ax2.plot(np.arange(len(prof)), prof, color="k", lw=1)
        ax2.axhline(0, color="0.6", lw=0.6)
        ax2.set_ylim(-1.05, 1.05)
        ax2.set_xlabel("lag |i - j|", fontsize=7)
        ax2.tick_params(labelsize=6)
        if j == 0:
            ax2.set_ylabel("mean cosine", fontsize=7)
    fig.colorbar(im, ax=axes[0, :].tolist(), shrink=0.8, label="cosine similarity")
    fig.suptitle(title, fontsize=10)
    return save_png(fig, out)


def counts_figure(panels: list[dict], title: str, out: str | Path) -> Path:
    """Side-by-side line plots. Each panel is ``{"x": [...], "xlabel", "ylabel", "title", "series": {label:
    values [len(x)] or [seeds, len(x)]}}``; with several seeds the mean is drawn and the range shaded."""
    n = len(panels)
    fig, axes = new_figure(1, n, figsize=(4.6 * n, 3.6), squeeze=False)
    for ax, p in zip(axes[0], panels):
        x = np.asarray(p["x"], dtype=float)
        for label, y in p["series"].items():
            y = np.asarray(y, dtype=float)
            y = y[None] if y.ndim == 1 else y
            line, = ax.plot(x, y.mean(0), marker="o", ms=3.5, lw=1.2, label=label)
            if len(y) > 1:
                ax.fill_between(x, y.min(0), y.max(0), color=line.get_color(), alpha=0.15, lw=0)
        ax.set_xlabel(p["xlabel"], fontsize=8)
        ax.set_ylabel(p["ylabel"], fontsize=8)
        ax.set_title(p["title"], fontsize=9)
        if p.get("logx"):
            ax.set_xscale("log")
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return save_png(fig, out)
