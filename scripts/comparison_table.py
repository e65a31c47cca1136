"""Tabulate how the heads of many analysed models compare count with width (``comparison`` in qk.json).

    python scripts/comparison_table.py runs/compare/*/ > table.md
    python scripts/comparison_table.py --causal runs/keyabl/*/ > key_ablation.md

Each argument is a folder holding a ``qk.json`` written by ``linebreak qk`` (or the file itself; a folder
named ``qk``, a study's or sweep run's stage, names its row by the run folder above it), read as a
:class:`linebreak.qk.result.QKResult` (a file written before results carried a ``format`` is read as that
format, and refused in one line if it lacks what the format needs). One
markdown row per model: the verdict's best head and the head whose attention to the previous newline moves
most, each with its split of the mean count x width attention logit into count effect / width effect /
interaction (:func:`linebreak.qk.twist.score_decomposition`), and the largest interaction share of any head
whose attention to the newline moves by at least ``--min-range``. A last line gives the medians over the rows.

With ``--causal`` the folders hold ``causal.json`` (``linebreak causal``) instead: one row per model and
key-ablated head (the measured boundary head first), with the newline-loss change from removing the head and
from each key ablation at newlines (mean, resampled, resampled among lines of the same length), their ratios
(``key_share``) and the head's logit split.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from linebreak.io import UserError, load_json
from linebreak.qk.attention import response_range
from linebreak.qk.result import Comparison, HeadSummary, QKResult


def _shares(c: dict) -> str:
    return f"{c['count_share']:.2f} / {c['width_share']:.2f} / {c['interaction_share']:.3f}"


def _split(h: HeadSummary) -> str:
    c: Comparison = h.comparison
    return f"{h.name} {c.count_share:.2f} / {c.width_share:.2f} / {c.interaction_share:.3f}"


def read_qk(name: str, d: dict) -> QKResult:
    """A parsed qk.json as a :class:`QKResult`; one without ``format`` (written before results carried one) is
    read as the current format, and any file that lacks a field is refused in one line."""
    if any("comparison" not in h for h in d.get("heads", [])):
        raise UserError(f"{name}: qk.json has no score decomposition; rerun linebreak qk")
    return QKResult.from_json({"format": QKResult.FORMAT, **d} if "format" not in d else d, where=f"{name}: qk.json")


def row(name: str, q: QKResult, min_range: float) -> tuple[str, dict]:
    """One model's markdown row and the numbers the summary line takes its medians of."""
    best = q.head(q.verdict.best_head)
    moving = max(q.heads, key=response_range)
    live = [h for h in q.heads if response_range(h) >= min_range] or [moving]
    top = max(live, key=lambda h: h.comparison.interaction_share)
    cells = [name, _split(best), _split(moving), f"{response_range(moving):.2f}",
             str(moving.response.peak_remaining), f"{top.name} {top.comparison.interaction_share:.3f}",
             "yes" if q.verdict.passes else "no"]
    nums = {"best": best.comparison.interaction_share, "moving": moving.comparison.interaction_share,
            "top": top.comparison.interaction_share}
    return "| " + " | ".join(cells) + " |", nums


def causal_rows(name: str, c: dict) -> list[str]:
    """One markdown row per key-ablated head of one model's causal.json."""
    if "key_ablation" not in c:
        raise UserError(f"{name}: causal.json has no key ablation; rerun linebreak causal")
    out = []
    for head, k in c["key_ablation"].items():
        role = "boundary" if head == c["boundary_head_ablation"]["top_head"] else "QK top"
        split = _shares(k["comparison"]) if k.get("comparison") else "-"
        modes = ("mean", "resample", "resample_same_length")
        share = " / ".join("-" if k["key_share"][m] is None else f"{k['key_share'][m]:+.2f}" for m in modes)
        loss = " / ".join(f"{k[m]['d_newline']:+.3f}" for m in modes)
        out.append(f"| {name} | {head} ({role}) | {k['head_d_newline']:+.3f} | {loss} | {share} | {split} |")
    return out


def _json_in(path: Path, file: str) -> tuple[str, dict]:
    """The named JSON in ``path`` (or ``path`` itself), and the row name: its folder, or the run above a stage
    folder named like the file (``qk/qk.json``, ``causal/causal.json``)."""
    f = path / file if path.is_dir() else path
    if not f.is_file():
        raise UserError(f"no {file} at {path}")
    stage = file.removesuffix(".json")
    return (f.parent.parent.name if f.parent.name == stage else f.parent.name), load_json(f)


def comparison_table(paths: list[Path], min_range: float) -> str:
    """The qk.json table and its medians line."""
    lines = ["| model | best twist head: count / width / interaction | most responsive head | its range | "
             "its peak (chars left) | largest interaction among live heads | twist verdict |",
             "|---|---|---|---|---|---|---|"]
    nums = []
    for path in paths:
        name, d = _json_in(path, "qk.json")
        line, n = row(name, read_qk(name, d), min_range)
        lines.append(line)
        nums.append(n)
    med = {k: float(np.median([n[k] for n in nums])) for k in nums[0]}
    lines += ["", f"{len(nums)} models; median interaction share: best head {med['best']:.3f}, most responsive head "
              f"{med['moving']:.3f}, largest among live heads {med['top']:.3f}."]
    return "\n".join(lines)


def key_ablation_table(paths: list[Path]) -> str:
    """The causal.json table: one row per key-ablated head."""
    rows = [r for path in paths for r in causal_rows(*_json_in(path, "causal.json"))]
    return "\n".join(["| model | head | newline loss: remove head | its newline keys: mean / resampled / "
                      "resampled, same line length | key share: the same three | its logit: query / key / "
                      "interaction |",
                      "|---|---|---|---|---|---|"] + rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="+", type=Path, help="folders holding qk.json (or causal.json with --causal)")
    p.add_argument("--min-range", type=float, default=0.05,
                   help="attention range to the newline a head needs to count as live (default 0.05)")
    p.add_argument("--causal", action="store_true", help="tabulate the key ablation of causal.json files")
    args = p.parse_args(argv)
    try:
        print(key_ablation_table(args.paths) if args.causal else comparison_table(args.paths, args.min_range))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
