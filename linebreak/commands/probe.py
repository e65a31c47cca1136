"""``linebreak probe``: probes and count-manifold geometry for every layer of a capture.

Reads a folder written by ``linebreak capture``; writes ``probe.json`` (every number) and
``probes.safetensors`` (probe weights, centroids) into ``--out`` (default: ``runs/probe``) and prints a
table. A ``control`` capture inside the folder (``linebreak capture --control``) is analysed the same way and
shown beside the model.

No ``--device`` / ``--dtype`` here: probe runs no model. It reads what capture stored (float32, or float16 with
``--store-dtype float16``) and fits in float64 on the CPU. The model's device and dtype are chosen where the
model runs, ``linebreak capture --device --dtype`` (recorded in capture.json and in probe.json's
``capture.model``); ``linebreak study --device --dtype`` captures in-process with them. Probe analyses the
layers that were captured (``linebreak capture --layers``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from linebreak.config import add_config_args, resolve_config


def register(subparsers) -> None:
    from linebreak.probe.config import ProbeConfig

    p = subparsers.add_parser("probe", help="probes, centroid PCA, ringing and helix fit per layer",
                              description=__doc__)
    p.add_argument("--acts", default="runs/capture",
                   help="activations folder (linebreak capture; default: runs/capture)")
    p.add_argument("--out", default="runs/probe", help="output folder for probe.json (default: runs/probe)")
    p.add_argument("--force", action="store_true", help="overwrite an existing analysis")
    add_config_args(p, ProbeConfig, "probe settings")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from linebreak.probe.config import ProbeConfig
    from linebreak.probe.layers import probe_folder, table
    from linebreak.probe.result import MARKER

    cfg = resolve_config(ProbeConfig, {"default": ProbeConfig()}, "default", args)
    out = Path(args.out)
    results = probe_folder(args.acts, out, cfg, args.force)
    print(table(results))
    print(f"analysis written to {out / MARKER}" + (" (and control/)" if "control" in results else ""))
    return 0
