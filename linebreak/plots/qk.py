"""Figures of the QK twist analysis, drawn from a :class:`linebreak.qk.result.QKResult`.

- ``qk_matrices_<head>.png``: the three cosine matrices (through the head's QK, identity, random control)
  with the per-row argmax drawn over each and the diagonal ``k = i`` for reference;
- ``qk_logits_<head>.png``: the head's mean attention logit over (count, width) and its interaction part
  (what a twist carries), titled with the count / width / interaction split of
  :func:`linebreak.qk.twist.score_decomposition`;
- ``qk_pca_<head>.html`` (+ ``.png``): joint 3-D PCA of count means and width means in the residual stream
  beside the same through the head's ``W_Q`` / ``W_K`` (the twist made visible);
- ``qk_key_tracks.png`` (table keys): the detailed heads' logit as one document's matching key moves over its
  row (:mod:`linebreak.qk.key_track`), beside the random-init control's;
- ``qk_response.png``: attention to the previous newline against characters remaining, top heads;
- ``qk_outputs_pca.png``: the top heads' summed outputs per characters remaining on their top 2 PCs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from linebreak.plots.common import new_figure, save_html, save_png
from linebreak.qk.result import Comparison, HeadSummary, QKResult, TopHead, TopOutputs
from linebreak.qk.twist import two_way_parts


def _arr(x) -> np.ndarray:
    """``x`` as a float array, None (JSON null) as nan."""
    return np.array([np.nan if v is None else v for v in np.ravel(x)], dtype=float).reshape(np.shape(x))


def plot_matrices(top: TopHead, i_values, k_values, path: Path, key: str = "width k") -> Path:
    fig, axes = new_figure(1, 3, figsize=(13, 4.2))
    i_values, k_values = np.asarray(i_values), np.asarray(k_values)
    for ax, name in zip(axes, ("qk", "identity", "control")):
        m = _arr(top.matrices[name])
        im = ax.imshow(m, origin="lower", aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1,
                       extent=(k_values[0] - 0.5, k_values[-1] + 0.5, i_values[0] - 0.5, i_values[-1] + 0.5))
        best = k_values[np.argmax(np.nan_to_num(m, nan=-2), axis=1)]
        ax.plot(best, i_values, "k.", ms=3, label="row argmax")
        lo, hi = max(i_values[0], k_values[0]), min(i_values[-1], k_values[-1])
        ax.plot([lo, hi], [lo, hi], "g--", lw=0.8, label="k = i")
        ax.set_title(f"{top.name} {name}" if name == "qk" else name)
        ax.set_xlabel(f"{key} (key side)")
        ax.set_ylabel("count i (query side)")
    axes[0].legend(loc="upper left", fontsize=7)
    fig.colorbar(im, ax=axes, shrink=0.8, label="cosine")
    return save_png(fig, path)


def plot_logits(top: TopHead, comparison: Comparison, i_values, k_values, path: Path, key: str = "width k") -> Path:
    fig, axes = new_figure(1, 2, figsize=(10, 4.2))
    i_values, k_values = np.asarray(i_values), np.asarray(k_values)
    S = _arr(top.logits)
    inter = two_way_parts(S)[3]
    extent = (k_values[0] - 0.5, k_values[-1] + 0.5, i_values[0] - 0.5, i_values[-1] + 0.5)
    c = comparison
    titles = (f"{top.name} mean logit: count {c.count_share:.0%}, width {c.width_share:.0%}",
              f"interaction (the twist's part): {c.interaction_share:.1%}")
    for ax, m, title in zip(axes, (S - S.mean(), inter), titles):
        v = float(np.nanmax(np.abs(m))) or 1.0
        im = ax.imshow(m, origin="lower", aspect="auto", cmap="RdBu_r", vmin=-v, vmax=v, extent=extent)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"{key} (key side)")
        ax.set_ylabel("count i (query side)")
        fig.colorbar(im, ax=ax, shrink=0.8, label="logit - mean")
    return save_png(fig, path)


def plot_pca(top: TopHead, i_values, k_values, path_html: Path, path_png: Path) -> list[Path]:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    nI = len(i_values)
    fig = make_subplots(rows=1, cols=2, specs=[[{"type": "scene"}, {"type": "scene"}]],
                        subplot_titles=("residual stream (what attention reads)", f"through {top.name}'s QK"))
    pfig, paxes = new_figure(1, 2, figsize=(10, 4.5), subplot_kw={"projection": "3d"})
    for col, key in enumerate(("pca_residual", "pca_qk")):
        P = _arr(getattr(top, key))
        P = np.pad(P, ((0, 0), (0, max(0, 3 - P.shape[1]))))
        sides = ((P[:nI], i_values, "circle", "Viridis"), (P[nI:], k_values, "diamond", "Plasma"))
        for part, vals, sym, cmap in sides:
            label = "count i" if sym == "circle" else "width k"
            marker = {"size": 3, "color": list(vals), "colorscale": cmap, "symbol": sym}
            fig.add_trace(go.Scatter3d(x=part[:, 0], y=part[:, 1], z=part[:, 2], mode="markers+lines",
                                       name=label, marker=marker, text=[f"{label} {v}" for v in vals]),
                          row=1, col=col + 1)
            paxes[col].scatter(part[:, 0], part[:, 1], part[:, 2], c=vals, cmap=cmap.lower(),
                               marker="o" if sym == "circle" else "^", s=8, label=label)
        paxes[col].set_title("residual" if col == 0 else f"through {top.name} QK")
    paxes[0].legend(fontsize=7)
    return [save_html(fig, path_html), save_png(pfig, path_png)]


def plot_response(heads: list[HeadSummary], path: Path) -> Path:
    fig, ax = new_figure(figsize=(6.5, 4))
    for h in heads:
        r = h.response
        ax.plot(r.remaining, _arr(r.attention), marker=".", label=h.name)
    ax.set_xlabel("characters remaining (W - count)")
    ax.set_ylabel("attention to the previous newline")
    ax.invert_xaxis()
    ax.legend(fontsize=8)
    return save_png(fig, path)


def plot_outputs(top_outputs: TopOutputs, path: Path) -> Path:
    fig, ax = new_figure(figsize=(5, 4.5))
    P = _arr(top_outputs.pcs)
    sc = ax.scatter(P[:, 0], P[:, 1] if P.shape[1] > 1 else np.zeros(len(P)), c=top_outputs.remaining,
                    cmap="viridis")
    ax.plot(P[:, 0], P[:, 1] if P.shape[1] > 1 else np.zeros(len(P)), "k-", lw=0.5)
    fig.colorbar(sc, ax=ax, label="characters remaining")
    ax.set_title(f"summed top-head outputs: top-2 PCs {100 * top_outputs.top2:.0f}%")
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    return save_png(fig, path)


def plot_qk(result: QKResult, out_dir: str | Path) -> list[Path]:
    """All QK figures for a result into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    iv, kv = result.i_values, result.k_values
    for top in result.top:
        paths.append(plot_matrices(top, iv, kv, out_dir / f"qk_matrices_{top.name}.png"))
        paths.append(plot_logits(top, result.head(top.name).comparison, iv, kv, out_dir / f"qk_logits_{top.name}.png"))
        paths += plot_pca(top, iv, kv, out_dir / f"qk_pca_{top.name}.html", out_dir / f"qk_pca_{top.name}.png")
    paths.append(plot_response([result.head(t.name) for t in result.top], out_dir / "qk_response.png"))
    paths.append(plot_outputs(result.top_outputs, out_dir / "qk_outputs_pca.png"))
    return paths


def plot_columns(result, out_dir: str | Path) -> list[Path]:
    """The detailed heads of a :class:`linebreak.qk.columns.ColumnQKResult`: their cosine matrices and mean
    logits over (count, column start), and both sides' 3-D PCA."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    iv, kv = result.i_values, result.k_values
    for top in result.top:
        paths.append(plot_matrices(top, iv, kv, out_dir / f"qk_matrices_{top.name}.png", "column start k"))
        paths.append(plot_logits(top, result.head(top.name).comparison, iv, kv, out_dir / f"qk_logits_{top.name}.png",
                                 "column start k"))
        paths += plot_pca(top, iv, kv, out_dir / f"qk_pca_{top.name}.html", out_dir / f"qk_pca_{top.name}.png")
    tracked = [(top.name, result.head(top.name).key_track) for top in result.top]
    tracked = [(name, kt) for name, kt in tracked if kt is not None]
    if tracked:
        paths.append(plot_key_tracks(tracked, out_dir / "qk_key_tracks.png"))
    return paths


def plot_key_tracks(tracked: list, path: Path) -> Path:
    """The detailed heads' key tracks (:mod:`linebreak.qk.key_track`): the mean logit change as one document's
    matching key moves ``δ`` characters, with the change taken by the pad just before it (near) or by the pads
    before that (far: only the key's count moves), beside the random-init control's near track; ``±D`` marked."""
    fig, axes = new_figure(1, len(tracked), figsize=(5.2 * len(tracked), 3.8), squeeze=False)
    for ax, (name, kt) in zip(axes[0], tracked):
        for t, style, label in ((kt.near, "C0-", "model, near"), (kt.far, "C1-", "model, far (count only)")):
            if t is not None:
                ax.plot(t.shifts, _arr(t.logit), style, lw=1.5, label=label)
        ax.plot(kt.near.shifts, _arr(kt.near.logit_control), "C7-", lw=1, label="random-init control, near")
        for d in (-kt.D, kt.D):
            ax.axvline(d, color="k", lw=0.6, ls=":")
        ax.axhline(0, color="k", lw=0.5)
        ax.set(xlabel="key moved δ characters", ylabel="logit(δ) - logit(0) (nats)",
               title=f"{name}: {kt.near.n_sites} documents; peak at ±{kt.D} on {kt.n_both} keys: near "
                     f"{kt.peak_near_both:+.2f}, far {kt.peak_far_both:+.2f}")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=8)
    return save_png(fig, path)
