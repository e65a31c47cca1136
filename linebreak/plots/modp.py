"""Figures of a grokking run: curves with the phases shaded, progress measures, embedding spectrum, neurons."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from linebreak import fourier
from linebreak.plots.common import new_figure, save_png

PHASE_COLOURS = {"memorisation": "#fde0c5", "circuit formation": "#d6e9f8", "clean-up": "#dcf2d8"}


def _shade(ax, phases, last_step: int) -> None:
    for name, start, end in phases.spans(last_step):
        ax.axvspan(max(start, 1), max(end, 1), color=PHASE_COLOURS[name], alpha=0.8, lw=0, label=name)


def _steps(records, key):
    rs = [r for r in records if r.get(key) is not None and r["step"] > 0]
    return np.array([r["step"] for r in rs]), np.array([r[key] for r in rs])


def _phase_panels(records, phases, log_steps: bool):
    """Two side-by-side panels over training steps, the grokking phases shaded on both."""
    fig, axes = new_figure(1, 2, figsize=(12, 4.2))
    last = records[-1]["step"]
    for ax in axes:
        _shade(ax, phases, last)
        if log_steps:
            ax.set_xscale("log")
        ax.set_xlabel("step")
    return fig, axes


def plot_curves(records, phases, path: Path) -> Path:
    fig, (ax_loss, ax_acc) = _phase_panels(records, phases, log_steps=True)
    for split, c in (("train", "C0"), ("test", "C3")):
        ax_loss.plot(*_steps(records, f"{split}_loss"), c, label=f"{split} loss")
        ax_acc.plot(*_steps(records, f"{split}_acc"), c, label=f"{split} accuracy")
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("cross-entropy")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(-0.02, 1.02)
    ax_loss.legend(fontsize=8)
    ax_acc.legend(fontsize=8, loc="center left")
    fig.suptitle("Grokking: train/test loss and accuracy (phases shaded)")
    return save_png(fig, path)


def plot_progress_measures(records, phases, path: Path) -> Path:
    fig, (ax, ax_w) = _phase_panels(records, phases, log_steps=False)
    for key, c in (("train_loss", "C0"), ("test_loss", "C3"), ("restricted_loss", "C2"), ("excluded_loss", "C4")):
        s, v = _steps(records, key)
        ax.plot(s, v, c, label=key.replace("_", " "), marker="." if key in ("restricted_loss", "excluded_loss")
                else None)
    ax.set_yscale("log")
    ax.set_ylabel("cross-entropy")
    ax.legend(fontsize=8)
    ax.set_title("restricted / excluded loss (final key frequencies)")
    ax_w.plot(*_steps(records, "weight_norm_sq"), "k", label="total squared weight norm")
    ax_w.set_ylabel("sum of squared weights")
    ax_g = ax_w.twinx()
    for key, c in (("gini_W_E", "C1"), ("gini_W_L", "C5")):
        ax_g.plot(*_steps(records, key), c, label=key.replace("_", " ", 1))
    ax_g.set_ylabel("Gini of Fourier norms")
    ax_w.legend(fontsize=8, loc="upper left")
    ax_g.legend(fontsize=8, loc="upper right")
    ax_w.set_title("weight norm and Fourier sparsity")
    return save_png(fig, path)


def plot_embedding_spectrum(W_E: np.ndarray, keys: list[int], path: Path) -> Path:
    norms = fourier.component_norms(W_E)
    _, labels = fourier.fourier_basis(len(W_E))
    ks = fourier.basis_frequencies(len(W_E))
    fig, ax = new_figure(figsize=(12, 3.8))
    colours = ["C3" if k in keys else "C0" for k in ks]
    ax.bar(np.arange(len(norms)), norms, color=colours)
    ticks = [i for i, lab in enumerate(labels) if lab.startswith("cos") and ks[i] in keys] or [0]
    ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=60, fontsize=8)
    ax.set_xlabel("Fourier component of the residue (key frequencies in red)")
    ax.set_ylabel("norm over d_model")
    ax.set_title(f"Fourier spectrum of the embedding W_E; key frequencies {keys}")
    return save_png(fig, path)


def plot_neuron_clusters(neurons, keys: list[int], path: Path, threshold: float = 0.85) -> Path:
    fig, (ax_h, ax_s) = new_figure(1, 2, figsize=(12, 4))
    n_freq = int(neurons.freq.max(initial=1))
    counts = np.bincount(neurons.freq[neurons.share >= threshold], minlength=n_freq + 1)
    ax_h.bar(np.arange(len(counts)), counts, color=["C3" if k in keys else "C0" for k in range(len(counts))])
    ax_h.set_xlabel("neuron's frequency k")
    ax_h.set_ylabel(f"neurons with >= {threshold:.0%} variance in k")
    ax_h.set_title(f"neuron frequency clusters ({(neurons.share >= threshold).mean():.0%} of neurons)")
    ax_s.hist(neurons.share, bins=40, color="C0")
    ax_s.axvline(threshold, color="k", ls="--")
    ax_s.set_xlabel("share of a neuron's variance explained by its best frequency")
    ax_s.set_ylabel("neurons")
    return save_png(fig, path)


def plot_all(out_dir: Path, records, phases, model, neurons, keys) -> list[Path]:
    fig_dir = Path(out_dir) / "figures"
    W_E = model.W_E[: model.shape.p].detach().numpy()
    return [plot_curves(records, phases, fig_dir / "grok_curves.png"),
            plot_progress_measures(records, phases, fig_dir / "progress_measures.png"),
            plot_embedding_spectrum(W_E, keys, fig_dir / "embedding_spectrum.png"),
            plot_neuron_clusters(neurons, keys, fig_dir / "neuron_clusters.png")]
