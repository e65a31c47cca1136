"""Tabulate how the heads of many analysed models compare count with width (``comparison`` in qk.json).

    python scripts/comparison_table.py runs/compare/*/ > table.md

Each argument is a folder holding a ``qk.json`` written by ``linebreak qk`` (or the file itself; a folder
named ``qk``, a study's or sweep run's stage, names its row by the run folder above it). One
markdown row per model: the verdict's best head and the head whose attention to the previous newline moves
most, each with its split of the mean count x width attention logit into count effect / width effect /
interaction (:func:`linebreak.twist.score_decomposition`), and the largest interaction share of any head
whose attention to the newline moves by at least ``--min-range``. A last line gives the medians over the rows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from linebreak.io import UserError, load_json


def _split(h: dict) -> str:
    c = h["comparison"]
    return f"{h['name']} {c['count_share']:.2f} / {c['width_share']:.2f} / {c['interaction_share']:.3f}"


def _range(h: dict) -> float:
    r = h["response"]["range"]
    return -1.0 if r is None else r


def row(name: str, q: dict, min_range: float) -> tuple[str, dict]:
    """One model's markdown row and the numbers the summary line takes its medians of."""
    heads = q["heads"]
    if "comparison" not in heads[0]:
        raise UserError(f"{name}: qk.json has no score decomposition; rerun linebreak qk")
    best = next(h for h in heads if h["name"] == q["verdict"]["best_head"])
    moving = max(heads, key=_range)
    live = [h for h in heads if _range(h) >= min_range] or [moving]
    top = max(live, key=lambda h: h["comparison"]["interaction_share"])
    cells = [name, _split(best), _split(moving), f"{_range(moving):.2f}",
             str(moving["response"]["peak_remaining"]), f"{top['name']} {top['comparison']['interaction_share']:.3f}",
             "yes" if q["verdict"]["passes"] else "no"]
    nums = {"best": best["comparison"]["interaction_share"], "moving": moving["comparison"]["interaction_share"],
            "top": top["comparison"]["interaction_share"]}
    return "| " + " | ".join(cells) + " |", nums


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="+", type=Path, help="folders holding qk.json (or qk.json files)")
    p.add_argument("--min-range", type=float, default=0.05,
                   help="attention range to the newline a head needs to count as live (default 0.05)")
    args = p.parse_args(argv)
    try:
        lines = ["| model | best twist head: count / width / interaction | most responsive head | its range | "
                 "its peak (chars left) | largest interaction among live heads | twist verdict |",
                 "|---|---|---|---|---|---|---|"]
        nums = []
        for path in args.paths:
            f = path / "qk.json" if path.is_dir() else path
            if not f.is_file():
                raise UserError(f"no qk.json at {path}")
            # a study's or sweep run's stage folder is named qk: name the row by its run instead
            name = f.parent.parent.name if f.parent.name == "qk" else f.parent.name
            line, n = row(name, load_json(f), args.min_range)
            lines.append(line)
            nums.append(n)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    med = {k: float(np.median([n[k] for n in nums])) for k in nums[0]}
    lines += ["", f"{len(nums)} models; median interaction share: best head {med['best']:.3f}, most responsive head "
              f"{med['moving']:.3f}, largest among live heads {med['top']:.3f}."]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
