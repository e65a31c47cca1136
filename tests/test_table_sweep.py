"""scripts/table_sweep.py: a table sweep config trains, measures and judges every seed, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "scripts" / "table_sweep.py"

TINY = {
    "description": "test",
    "base": "table-tiny",
    "val": {"n_train": 8, "n_val": 48},
    "qk": {"n_docs": 32, "min_per_value": 4, "min_values": 3, "key_shift_pairs": 48, "key_track_sites": 8},
    "causal": {"n_docs": 32},
    "runs": [{"name": "tiny", "why": "test", "optim": {"steps": 60, "eval_every": 60, "pad_loss_weight": 3.0,
                                                      "threads": 2}, "seeds": [0]}],
}


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).parents[1])


def test_a_tiny_sweep_runs_every_stage_and_writes_its_record(tmp_path):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    r = run(str(cfg), "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--max-docs", "48",
            "--threads", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads((tmp_path / "out" / "tables.json").read_text())
    assert rec["format"] == "linebreak-table-sweep/1" and list(rec["runs"]) == ["tiny-seed0"]
    one = rec["runs"]["tiny-seed0"]
    assert one["settings"]["train"]["optim"]["steps"] == 60 and one["settings"]["train"]["model"]["init_seed"] == 0
    # the record keeps what the model was trained with: --threads over the run's own setting
    assert one["settings"]["train"]["optim"]["threads"] == 1
    assert set(one["targets"]) == {"pad_acc", "spectrum", "rings", "twist_all_and_halves", "key_shift_peaks",
                                   "key_track_rings", "same_column_keeps", "other_column_removes"}
    assert one["verdict"]["best_head"] in one["heads"] and "passes" in one["control_qk"]
    shift = one["heads"][one["verdict"]["best_head"]]["key_shift"]
    assert shift["shifts"] == [1, 2, 3, 4, 5] and shift["peaks"] == one["targets"]["key_shift_peaks"]
    assert set(one["key_shift_peaks"]) == {f"L{L}H{h}" for L in range(2) for h in range(4)}
    track = one["heads"][one["verdict"]["best_head"]]["key_track"]
    assert track["near"]["n_sites"] == 8 and track["rings"] == one["targets"]["key_track_rings"]
    assert set(one["key_track_rings"]) == set(one["key_shift_peaks"]) == set(one["key_track_orders"])
    assert one["geometry"] and one["pads"]["pad_positions_rows1"] > 0
    assert one["score_bounds"] == [None, None]  # llama: nothing bounds its attention logits
    md = (tmp_path / "out" / "tables.md").read_text()
    assert "tiny-seed0" in md and "| tiny | 1 |" in md and (tmp_path / "out" / "tables.png").stat().st_size > 0
    # a second run reuses every stage: nothing is trained or captured again
    before = (tmp_path / "work" / "models" / "tiny-seed0" / "model.safetensors").stat().st_mtime_ns
    r = run(str(cfg), "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out2"), "--max-docs", "48")
    assert r.returncode == 0 and "training" not in r.stdout
    assert (tmp_path / "work" / "models" / "tiny-seed0" / "model.safetensors").stat().st_mtime_ns == before
    assert json.loads((tmp_path / "out2" / "tables.json").read_text())["runs"] == rec["runs"]


def test_an_unknown_setting_is_one_line(tmp_path):
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({**TINY, "runs": [{"name": "x", "model": {"n_layers": 3}}]}))
    r = run(str(cfg), "--work", str(tmp_path / "w"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "unknown model setting(s) n_layers" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()
