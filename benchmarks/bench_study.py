"""Benchmark: the default study end to end against its 10-minute target on this machine.

Runs ``linebreak study`` (default preset, fresh output folder unless ``--out`` holds a finished run to read),
then prints each stage's wall time from report.json, the total, and the ratio to the 600 s target.

    python benchmarks/bench_study.py [--out runs/bench/study] [--read-only]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

TARGET_S = 600.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/bench/study")
    ap.add_argument("--read-only", action="store_true", help="only read an existing report.json")
    args = ap.parse_args()
    out = Path(args.out)
    if not args.read_only:
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "linebreak", "study", "--out", str(out)], check=True)
    rec = json.loads((out / "report.json").read_text())
    print(f"{'stage':<22}{'wall s':>10}{'share':>8}")
    total = rec["settings"]["stages_wall_s"]  # every stage's own time, also when a rerun reused it
    for name, st in rec["stages"].items():
        print(f"{name:<22}{st['wall_s']:>10.1f}{st['wall_s'] / total:>8.0%}{'  (reused)' if st.get('reused') else ''}")
    print(f"{'total':<22}{total:>10.1f}")
    print(f"total / target ({TARGET_S:.0f} s) = {total / TARGET_S:.2f}  -> {'met' if total <= TARGET_S else 'NOT met'}")


if __name__ == "__main__":
    main()
