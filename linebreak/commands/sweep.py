"""``linebreak sweep``: train and analyse many settings to find where the count helix and the QK twist appear.

Reads a sweep config (default ``sweeps/helix.json``), runs each setting's corpus -> model -> probe -> qk
stages under ``--out/<run name>`` (finished stages are reused, so an interrupted sweep resumes), and writes
``sweep.json``, ``summary.md`` and ``summary.png``.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="the helix-and-twist sweep over training settings",
                              description=__doc__)
    p.add_argument("--config", default="sweeps/helix.json", help="sweep config JSON (default: sweeps/helix.json)")
    p.add_argument("--out", default="runs/sweep", help="output folder (default: runs/sweep)")
    p.add_argument("--only", help="comma list of run names to run (default: all)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from linebreak.config import parse_tuple
    from linebreak.study.sweep import run_sweep

    only = list(parse_tuple(args.only, str, "--only")) if args.only else None
    rec = run_sweep(args.config, args.out, only)
    print((Path(args.out) / "summary.md").read_text())
    print(f"best run: {rec['best']}; any run meets every target: {rec['any_meets_all_targets']}")
    return 0
