"""Cosine-similarity heatmaps between counts (of centroids, or of per-count probe vectors).

A helix "rings": positive near the diagonal, negative further out, positive again. A straight line gives
two blocks of +1 and -1. The panel under each heatmap is the mean similarity by lag |i - j| (what the
ringing numbers in ``probe.json`` summarise).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from linebreak.plots.common import new_figure, save_png


def similarity_figure(cos: np.ndarray, values: np.ndarray, profile: np.ndarray, title: str,
                      out: str | Path) -> Path:
    fig, (ax, ax2) = new_figure(2, 1, figsize=(5.5, 7), gridspec_kw={"height_ratios": [3, 1]})
    ext = [values[0] - 0.5, values[-1] + 0.5, values[-1] + 0.5, values[0] - 0.5]
    im = ax.imshow(cos, cmap="RdBu_r", vmin=-1, vmax=1, extent=ext)
    ax.set_xlabel("character count")
    ax.set_ylabel("character count")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="cosine similarity")
    ax2.plot(np.arange(len(profile)), profile, color="k", lw=1)
    ax2.axhline(0, color="0.6", lw=0.6)
    ax2.set_xlabel("lag |i - j| (characters)")
    ax2.set_ylabel("mean cosine")
    ax2.set_ylim(-1.05, 1.05)
    return save_png(fig, Path(out).with_name(Path(out).name + ".png"))
