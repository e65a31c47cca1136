"""``linebreak probe``: probes and count-manifold geometry for every layer of a capture.

Reads a folder written by ``linebreak capture``; writes ``analysis.json`` (every number) and
``probes.safetensors`` (probe weights, centroids) into ``--out`` (default: the capture folder) and prints a
table. A ``control`` capture inside the folder (``linebreak capture --control``) is analysed the same way and
shown beside the model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from linebreak.config import add_config_args, resolve_config


def register(subparsers) -> None:
    from linebreak.probe.layers import ProbeConfig

    p = subparsers.add_parser("probe", help="probes, centroid PCA, ringing and helix fit per layer",
                              description=__doc__)
    p.add_argument("--acts", required=True, help="activations folder (linebreak capture)")
    p.add_argument("--out", help="output folder (default: the --acts folder)")
    p.add_argument("--force", action="store_true", help="overwrite an existing analysis")
    add_config_args(p, ProbeConfig, "probe settings")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from linebreak.capture.activations import MARKER as CAPTURED
    from linebreak.capture.activations import load_activations
    from linebreak.io import prepare_out_dir
    from linebreak.probe.layers import MARKER, ProbeConfig, analyse, save_analysis, table

    cfg = resolve_config(ProbeConfig, {"default": ProbeConfig()}, "default", args)
    src = Path(args.acts)
    out = Path(args.out) if args.out else src
    runs = {"model": (src, out)}
    if (src / "control" / CAPTURED).is_file():
        runs["control"] = (src / "control", out / "control")
    for _, dst in runs.values():
        prepare_out_dir(dst, args.force, MARKER)
    results = {}
    for name, (s, dst) in runs.items():
        results[name] = analyse(load_activations(s), cfg)
        save_analysis(results[name], dst)
    print(table(results))
    print(f"analysis written to {out / MARKER}" + (" (and control/)" if "control" in runs else ""))
    return 0
