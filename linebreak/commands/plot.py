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
    p.add_argument("--probes", default="runs/probe",
                   help="folder holding probe.json (linebreak probe; default: runs/probe)")
    p.add_argument("--acts", default="runs/capture", help="activations folder for --umap (default: runs/capture)")
    p.add_argument("--out", default="figures/probe", help="figure folder (default: figures/probe)")
    p.add_argument("--layers", help="comma list of analysed keys such as resid_post.2 (default: all)")
    p.add_argument("--umap", action="store_true", help="also draw a UMAP of token activations (last layer)")
    p.add_argument("--umap-rows", type=int, default=2000, help="tokens in the UMAP view (seeded sample)")
    p.add_argument("--seed", type=int, default=0, help="seed of the UMAP view")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from linebreak.plots.layers import plot_probes

    src = Path(args.probes)
    out = Path(args.out)
    layers = [k.strip() for k in args.layers.split(",")] if args.layers else None
    files = plot_probes(src, out, layers, umap=args.umap, acts=args.acts, umap_rows=args.umap_rows, seed=args.seed)
    print(f"{len(files)} figures written to {out}")
    for f in files:
        print(f"  {f}")
    return 0
