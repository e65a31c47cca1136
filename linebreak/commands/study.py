"""``linebreak study``: generate -> train -> capture and probe (beside a random-init control) -> QK twist ->
causal -> mod-P reference, then ``report.md`` and ``report.json``. Finished stages are reused while their
inputs are unchanged, so a rerun after an interruption picks up where it stopped. With ``--model DIR --text
FILE`` it analyses any local Hugging Face causal LM (no training) on that prose re-wrapped at the chosen widths.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from linebreak.config import add_config_args
    from linebreak.study.pipeline import StudyConfig  # noqa: I001  (light: dataclasses only at import)

    p = subparsers.add_parser("study", help="the whole study in one command, with a report",
                              description=__doc__)
    p.add_argument("--out", default="runs/study", help="output folder (default: runs/study)")
    add_config_args(p, StudyConfig, "study settings")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from linebreak.config import config_overrides
    from linebreak.study.pipeline import StudyConfig, run_study

    rec = run_study(StudyConfig(**config_overrides(StudyConfig, args)), args.out)
    print()
    for f in rec["findings"]:
        mark = {True: "agrees", False: "differs", None: "-"}[f["agrees"]]
        print(f"[{mark:>7}] {f['sentence']}")
    print(f"\nreport: {args.out}/report.md  ({rec['settings']['total_wall_s']:.0f} s in all)")
    return 0
