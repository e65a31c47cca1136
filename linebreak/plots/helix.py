"""3D views of the count manifold: the centroids' PCs 1-3 (and 4-6) coloured by character count.

Each view is written twice: a PNG (matplotlib, fixed camera) and a self-contained HTML (plotly, plotly.js
embedded, works offline) that rotates in a browser. Axes are labelled with each PC's share of the centroid
variance, because autoscaled 3D axes make a 1 % component look as large as a 95 % one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from linebreak.plots.common import new_figure, save_html, save_png


def _labels(ratio, pcs) -> list[str]:
    return [f"PC{i + 1} ({100 * ratio[i]:.1f}% var)" if i < len(ratio) else f"PC{i + 1}" for i in pcs]


def helix_figures(coords: np.ndarray, values: np.ndarray, ratio, title: str, out: str | Path,
                  pcs=(0, 1, 2), what: str = "count") -> list[Path]:
    """Write ``out.png`` and ``out.html``: points ``coords[:, pcs]`` joined in order of ``values``."""
    import plotly.graph_objects as go

    out = Path(out)
    if coords.shape[1] <= max(pcs):
        return []
    xyz = coords[:, list(pcs)]
    names = _labels(ratio, pcs)
    fig, _ = new_figure(figsize=(6.5, 5.5))
    fig.clf()
    ax = fig.add_subplot(111, projection="3d")
    ax.plot(*xyz.T, color="0.6", lw=0.8)
    sc = ax.scatter(*xyz.T, c=values, cmap="viridis", s=18, depthshade=False)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_zlabel(names[2])
    ax.set_title(title, fontsize=9)
    fig.colorbar(sc, ax=ax, shrink=0.6, pad=0.12, label=what)
    written = [save_png(fig, out.with_name(Path(out).name + ".png"))]
    trace = go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="lines+markers",
                         marker={"size": 4, "color": values, "colorscale": "Viridis",
                                 "colorbar": {"title": what}},
                         line={"color": "#999", "width": 2}, text=[f"{what} {v}" for v in values],
                         hoverinfo="text")
    pfig = go.Figure(trace)
    pfig.update_layout(title={"text": title.replace("\n", "<br>"), "font": {"size": 13}},
                       scene={"xaxis_title": names[0], "yaxis_title": names[1], "zaxis_title": names[2]},
                       margin={"l": 0, "r": 0, "t": 60, "b": 0})
    written.append(save_html(pfig, out.with_name(Path(out).name + ".html")))
    return written


def umap_figures(emb: np.ndarray, values: np.ndarray, title: str, out: str | Path) -> list[Path]:
    """Token activations embedded by UMAP in 3D, coloured by count (PNG + HTML)."""
    import plotly.graph_objects as go

    out = Path(out)
    fig, _ = new_figure(figsize=(6.5, 5.5))
    fig.clf()
    ax = fig.add_subplot(111, projection="3d")
    sc = ax.scatter(*emb.T, c=values, cmap="viridis", s=3, depthshade=False)
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    ax.set_zlabel("UMAP 3")
    ax.set_title(title, fontsize=9)
    fig.colorbar(sc, ax=ax, shrink=0.6, pad=0.12, label="count")
    written = [save_png(fig, out.with_name(Path(out).name + ".png"))]
    pfig = go.Figure(go.Scatter3d(x=emb[:, 0], y=emb[:, 1], z=emb[:, 2], mode="markers",
                                  marker={"size": 2, "color": values, "colorscale": "Viridis",
                                          "colorbar": {"title": "count"}}))
    pfig.update_layout(title={"text": title, "font": {"size": 13}},
                       scene={"xaxis_title": "UMAP 1", "yaxis_title": "UMAP 2", "zaxis_title": "UMAP 3"})
    written.append(save_html(pfig, out.with_name(Path(out).name + ".html")))
    return written
