"""Run a sweep's runs side by side on a many-core (or GPU) machine, then merge them into one record.

``linebreak sweep`` runs one model after another. On a machine with many cores, and a GPU that a single small
model cannot fill, this script starts ``--jobs`` single-threaded ``linebreak sweep --only NAME`` processes at
once, each into its own folder ``OUT/NAME`` (so that no two write the same file), in the config's order. At
``--deadline`` seconds it stops the runs still going (their rows are missing from the record, and the merged
record says which). It then writes ``OUT/sweep.json`` (every finished row, as ``linebreak sweep`` writes it)
and ``OUT/summary.md`` (the sweep's table).

    python scripts/parallel_sweep.py --config sweeps/gpu.json --out runs/gpu --jobs 16 --deadline 480

To train on a GPU, a config sets ``"common": {"optim": {"device": "cuda"}}`` (``sweeps/gpu.json`` does); the
analyses run on the CPU, one thread per run.

Bad input (a missing config, a run name twice) is a one-line error with exit status 2.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from linebreak.io import UserError, load_json, save_json, write_text
from linebreak.study.sweep import load_sweep, score, summary_table


def launch(config: Path, out: Path, name: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(out / f"{name}.log", "w") as log:  # the child keeps its own copy of the file
        return subprocess.Popen([sys.executable, "-m", "linebreak", "sweep", "--config", str(config),
                                 "--out", str(out / name), "--only", name], stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)


def run_all(config: Path, out: Path, jobs: int, deadline: float) -> dict:
    spec = load_sweep(config)
    names = [r["name"] for r in spec["runs"]]
    out.mkdir(parents=True, exist_ok=True)
    todo, running, status = list(names), {}, {}
    t0 = time.monotonic()
    while todo or running:
        while todo and len(running) < jobs and time.monotonic() - t0 < deadline:
            name = todo.pop(0)
            running[name] = launch(config, out, name)
            print(f"[{time.monotonic() - t0:6.0f}s] start {name}", flush=True)
        for name, p in list(running.items()):
            if p.poll() is not None:
                status[name] = "done" if p.returncode == 0 else f"failed (exit {p.returncode})"
                print(f"[{time.monotonic() - t0:6.0f}s] {status[name]}: {name}", flush=True)
                del running[name]
        if time.monotonic() - t0 >= deadline:
            for name, p in running.items():
                os.killpg(p.pid, 9)
                status[name] = "stopped at the deadline"
            status |= {name: "not started" for name in todo}
            running, todo = {}, []
        time.sleep(1.0)
    rows = []
    for name in names:
        rec = out / name / "sweep.json"
        if status.get(name) == "done" and rec.is_file():
            rows += [r for r in load_json(rec, "sweep record")["runs"] if r["name"] == name]
    record = {"spec": spec, "runs": rows, "status": status, "wall_s": time.monotonic() - t0}
    if rows:
        record["best"] = max(rows, key=score)["name"]
        write_text(out / "summary.md", summary_table(rows, record["best"]))
    save_json(out / "sweep.json", record)
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--deadline", type=float, default=float("inf"), help="seconds after which runs are stopped")
    args = ap.parse_args(argv)
    try:
        if args.jobs < 1:
            raise UserError(f"--jobs must be positive, got {args.jobs}")
        record = run_all(args.config, args.out, args.jobs, args.deadline)
    except UserError as e:
        print(f"parallel_sweep: error: {e}", file=sys.stderr)
        return 2
    done = sum(v == "done" for v in record["status"].values())
    print(f"{done} of {len(record['status'])} runs finished; record in {args.out / 'sweep.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
