"""``linebreak plot``: figures of the count manifold from a ``linebreak probe`` folder.

Per analysed layer: the centroids' PCs 1-3 and 4-6 in 3D (PNG + self-contained rotating HTML), and the
cosine-similarity heatmaps of centroids and of per-count probe vectors; across layers: probe R^2 and the
similarity-peak width (model beside its control when there is one). ``--umap`` adds a seeded UMAP view of
token activations (needs umap-learn; slow the first time while numba compiles).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("plot", help="3D helix views, similarity heatmaps, probe R^2 by layer",
                              description=__doc__)
    p.add_argument("--probes", required=True, help="folder holding analysis.json (linebreak probe)")
    p.add_argument("--acts", help="activations folder for --umap (default: the --probes folder)")
    p.add_argument("--out", help="figure folder (default: figures/<probes folder name>)")
    p.add_argument("--layers", help="comma list of analysed keys such as resid_post.2 (default: all)")
    p.add_argument("--umap", action="store_true", help="also draw a UMAP of token activations (last layer)")
    p.add_argument("--umap-rows", type=int, default=2000, help="tokens in the UMAP view (seeded sample)")
    p.add_argument("--seed", type=int, default=0, help="seed of the UMAP view")
    p.set_defaults(func=run)


def _load(folder: Path):
    from linebreak.io import load_json, load_tensors
    from linebreak.probe.layers import MARKER

    res = load_json(folder / MARKER, "analysis (run linebreak probe first)")
    tensors = {k: v.numpy() for k, v in load_tensors(folder / "probes.safetensors", "probe weights").items()}
    return res, tensors


def layer_figures(key: str, r: dict, t: dict, run: str, out: Path) -> list[Path]:
    from linebreak.plots.heatmaps import similarity_figure
    from linebreak.plots.helix import helix_figures
    from linebreak.probe import manifold as M

    hook, vals, stem = r["hook"], t[f"{key}.centroids.values"], key.replace(".", "_L")
    pca = r["centroids"]["pca"]
    head = f"{run}: per-count mean activation (centroid) of space-prefixed words, {hook}"
    files = []
    for pcs, tag in (((0, 1, 2), "pc123"), ((3, 4, 5), "pc456")):
        title = (f"{head}\nPCs {pcs[0] + 1}-{pcs[2] + 1}; top-3 PCs {100 * pca['top3']:.1f}%, "
                 f"top-6 {100 * pca['top6']:.1f}% of variance; counts {vals[0]}-{vals[-1]}")
        files += helix_figures(t[f"{key}.centroids.pcs"], vals, pca["ratio"], title,
                               out / f"{run}_{stem}_helix_{tag}", pcs=pcs)
    for what, label in (("centroids", "centroids"), ("count_probes", "per-count logistic probe vectors")):
        W = t[f"{key}.centroids" if what == "centroids" else f"{key}.count_probes.weight"]
        v = vals if what == "centroids" else t[f"{key}.count_probes.values"]
        if len(v) != len(W) or what not in r or "ringing" not in r[what]:
            continue
        cos = M.cosine_matrix(W)
        rg = r[what]["ringing"]
        title = (f"{run}: cosine similarity between counts, {label}, {hook}\n"
                 f"sign changes {rg['sign_changes']}, first negative lobe {rg['first_negative']:.2f}, "
                 f"next positive lobe {rg['second_positive']:.2f}, peak width {r[what]['peak_width']:.1f}")
        files.append(similarity_figure(cos, v, M.lag_profile(cos), title,
                                       out / f"{run}_{stem}_similarity_{what}"))
    return files


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from linebreak.io import UserError
    from linebreak.plots.curves import peak_width_by_layer, r2_by_layer

    src = Path(args.probes)
    out = Path(args.out or Path("figures") / src.resolve().name)
    runs = {"model": _load(src)}
    if (src / "control" / "analysis.json").is_file():
        runs["control"] = _load(src / "control")
    keys = list(runs["model"][0]["layers"])
    if args.layers:
        want = [k.strip() for k in args.layers.split(",")]
        bad = [k for k in want if k not in keys]
        if bad:
            raise UserError(f"no analysis for {', '.join(bad)}; analysed: {', '.join(keys)}")
        keys = want
    files = []
    for run_name, (res, t) in runs.items():
        for key in keys if run_name == "model" else keys[-1:]:
            files += layer_figures(key, res["layers"][key], t, run_name, out)
    analyses = {k: v[0] for k, v in runs.items()}
    files.append(r2_by_layer(analyses, "Held-out R^2 of ridge probes by layer (dotted: randomly initialised "
                             "control)", out / "probe_r2_by_layer"))
    files.append(peak_width_by_layer(analyses, "Width of the count-similarity peak by layer (narrower = "
                                     "sharper); dotted: control", out / "peak_width_by_layer"))
    if args.umap:
        from linebreak.capture.activations import load_activations
        from linebreak.plots.helix import umap_figures
        from linebreak.probe.manifold import umap_embedding, word_rows

        acts = load_activations(Path(args.acts) if args.acts else src)
        last = runs["model"][0]["layers"][keys[-1]]
        site, layer = last["site"], last["layer"]
        rows = np.flatnonzero(word_rows(acts.labels))
        rng = np.random.default_rng(args.seed)
        rows = np.sort(rng.choice(rows, size=min(args.umap_rows, len(rows)), replace=False))
        emb = umap_embedding(acts.get(site, layer).float().numpy()[rows], seed=args.seed)
        files += umap_figures(emb, acts.labels["count"][rows],
                              f"UMAP (seed {args.seed}) of {len(rows)} space-prefixed word tokens, "
                              f"{last['hook']}, coloured by count",
                              out / f"model_{keys[-1].replace('.', '_L')}_umap")
    print(f"{len(files)} figures written to {out}")
    for f in files:
        print(f"  {f}")
    return 0
