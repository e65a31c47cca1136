"""Figures of the count manifold from a probe result (``linebreak plot``, and the study's report).

Per analysed layer (:func:`layer_figures`): the centroids' PCs 1-3 and 4-6 in 3D (PNG + rotating HTML) and
the cosine-similarity heatmaps of centroids and of per-count probe vectors. :func:`plot_probes` draws those
for a ``linebreak probe`` folder, plus, across layers, probe R^2 and the similarity-peak width (model beside
its random-init control when there is one), and optionally a seeded UMAP of token activations.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from linebreak.probe.result import ProbeResult


def layer_figures(result: ProbeResult, key: str, run: str, out: Path) -> list[Path]:
    """Helix views and similarity heatmaps of layer ``key`` of ``result`` (with its tensors) into ``out``."""
    from linebreak.plots.heatmaps import similarity_figure
    from linebreak.plots.helix import helix_figures
    from linebreak.probe import manifold as M

    r, t = result.layers[key], result.tensors
    hook, vals, stem = r.hook, t[f"{key}.centroids.values"], key.replace(".", "_L")
    pca = r.centroids.pca
    head = f"{run}: per-count mean activation (centroid) of space-prefixed words, {hook}"
    files = []
    for pcs, tag in (((0, 1, 2), "pc123"), ((3, 4, 5), "pc456")):
        title = (f"{head}\nPCs {pcs[0] + 1}-{pcs[2] + 1}; top-3 PCs {100 * pca.top3:.1f}%, "
                 f"top-6 {100 * pca.top6:.1f}% of variance; counts {vals[0]}-{vals[-1]}")
        files += helix_figures(t[f"{key}.centroids.pcs"], vals, pca.ratio, title,
                               out / f"{run}_{stem}_helix_{tag}", pcs=pcs)
    for what, label in (("centroids", "centroids"), ("count_probes", "per-count logistic probe vectors")):
        W = t[f"{key}.centroids" if what == "centroids" else f"{key}.count_probes.weight"]
        v = vals if what == "centroids" else t[f"{key}.count_probes.values"]
        shape = getattr(r, what)
        if len(v) != len(W) or shape.ringing is None:
            continue
        cos = M.cosine_matrix(W)
        rg = shape.ringing
        title = (f"{run}: cosine similarity between counts, {label}, {hook}\n"
                 f"sign changes {rg.sign_changes}, first negative lobe {rg.first_negative:.2f}, "
                 f"next positive lobe {rg.second_positive:.2f}, peak width {shape.peak_width:.1f}")
        files.append(similarity_figure(cos, v, M.lag_profile(cos), title,
                                       out / f"{run}_{stem}_similarity_{what}"))
    return files


def umap_view(acts, result: ProbeResult, key: str, out: Path, rows: int = 2000, seed: int = 0) -> list[Path]:
    """A seeded UMAP of ``rows`` space-prefixed word tokens of layer ``key``, coloured by count."""
    from linebreak.plots.helix import umap_figures
    from linebreak.probe.manifold import umap_embedding, word_rows

    layer = result.layers[key]
    idx = np.flatnonzero(word_rows(acts.labels))
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(idx, size=min(rows, len(idx)), replace=False))
    emb = umap_embedding(acts.get(layer.site, layer.layer).float().numpy()[idx], seed=seed)
    return umap_figures(emb, acts.labels["count"][idx],
                        f"UMAP (seed {seed}) of {len(idx)} space-prefixed word tokens, {layer.hook}, coloured by count",
                        out / f"model_{key.replace('.', '_L')}_umap")


def plot_probes(probes: str | Path, out: str | Path, layers: list[str] | None = None, umap: bool = False,
                acts: str | Path | None = None, umap_rows: int = 2000, seed: int = 0) -> list[Path]:
    """Every figure of a ``linebreak probe`` folder (see the module doc); returns the files written.

    ``layers`` picks analysed keys such as ``resid_post.2`` (default: all; the control gets the last one).
    The UMAP view reads the activations in ``acts`` (default: the ``probes`` folder)."""
    from linebreak.io import UserError
    from linebreak.plots.curves import peak_width_by_layer, r2_by_layer
    from linebreak.probe.result import load_probes

    src, out = Path(probes), Path(out)
    model, control = load_probes(src, tensors=True)
    runs = {"model": model} | ({"control": control} if control is not None else {})
    keys = list(model.layers)
    if layers:
        bad = [k for k in layers if k not in keys]
        if bad:
            raise UserError(f"no analysis for {', '.join(bad)}; analysed: {', '.join(keys)}")
        keys = list(layers)
    files = []
    for run_name, res in runs.items():
        for key in keys if run_name == "model" else keys[-1:]:
            files += layer_figures(res, key, run_name, out)
    files.append(r2_by_layer(runs, "Held-out R^2 of ridge probes by layer (dotted: randomly initialised "
                             "control)", out / "probe_r2_by_layer"))
    files.append(peak_width_by_layer(runs, "Width of the count-similarity peak by layer (narrower = "
                                     "sharper); dotted: control", out / "peak_width_by_layer"))
    if umap:
        from linebreak.capture.store import load_activations

        files += umap_view(load_activations(Path(acts) if acts else src), model, keys[-1], out, umap_rows, seed)
    return files
