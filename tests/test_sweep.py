"""The helix-and-twist sweep: a tiny two-architecture sweep end to end, resumable, and bad configs refused."""

import json

import pytest

from linebreak.io import UserError


def _write(path, spec):
    path.write_text(json.dumps(spec))
    return path


def test_tiny_sweep_records_every_number_and_resumes(tmp_path):
    from linebreak.study.sweep import TARGETS, run_sweep

    spec = _write(tmp_path / "s.json", {
        "base": "tiny", "common": {"optim": {"steps": 60, "eval_every": 30}},
        "runs": [{"name": "gpt2"}, {"name": "rotary", "model": {"arch": "llama", "pos": "rotary"}}]})
    logs: list[str] = []
    rec = run_sweep(spec, tmp_path / "out", log=logs.append)
    assert [r["name"] for r in rec["runs"]] == ["gpt2", "rotary"]
    for r in rec["runs"]:
        for k in ("info_captured", "count_r2", "pc1", "top6", "sign_changes", "helix_gain", "control_pc1",
                  "qk_slope", "qk_offset", "qk_max_cos", "identity_max_cos", "qk_holds_on_halves",
                  "qk_probe_passes", "qk_interaction_share"):
            assert r[k] is not None, (r["name"], k)
        assert 0 <= r["qk_interaction_share"] <= 1
        assert set(r["targets"]) == set(TARGETS)
        assert 0 <= r["pc1"] <= r["top6"] <= 1 + 1e-9
    assert rec["best"] in {"gpt2", "rotary"}
    assert rec["runs"][1]["settings"]["train"]["model"]["arch"] == "llama"
    table = (tmp_path / "out" / "summary.md").read_text()
    assert "| gpt2 |" in table or "| **gpt2** |" in table
    assert (tmp_path / "out" / "summary.png").stat().st_size > 10_000
    # a rerun reuses every finished stage
    logs.clear()
    again = run_sweep(spec, tmp_path / "out", log=logs.append)
    assert sum("reusing" in m for m in logs) == 2 * 4
    assert [r["pc1"] for r in again["runs"]] == [r["pc1"] for r in rec["runs"]]
    # --only adds to the record: the other run's row is kept while its settings are unchanged ...
    one = run_sweep(spec, tmp_path / "out", only=["rotary"], log=logs.append)
    assert [r["name"] for r in one["runs"]] == ["gpt2", "rotary"]
    assert one["runs"][0] == again["runs"][0]
    # ... also when it was recorded before a setting existed that is now at its default (an upgrade) ...
    rec_path = tmp_path / "out" / "sweep.json"
    old = json.loads(rec_path.read_text())
    del old["runs"][0]["settings"]["train"]["optim"]["device"]
    rec_path.write_text(json.dumps(old))
    assert [r["name"] for r in run_sweep(spec, tmp_path / "out", only=["rotary"], log=logs.append)["runs"]] \
        == ["gpt2", "rotary"]
    # ... and dropped once they change (its stages are then recomputed when it is run again)
    changed = _write(tmp_path / "s2.json", {
        "base": "tiny", "common": {"optim": {"steps": 60, "eval_every": 30}},
        "runs": [{"name": "gpt2", "model": {"d_model": 16}}, {"name": "rotary", "model": {"arch": "llama",
                                                                                          "pos": "rotary"}}]})
    assert [r["name"] for r in run_sweep(changed, tmp_path / "out", only=["rotary"], log=logs.append)["runs"]] \
        == ["rotary"]


def test_same_settings_counts_a_missing_setting_at_its_default_as_unchanged():
    from linebreak.study.sweep import same_settings

    defaults = {"optim": {"lr": 1.0, "device": "cpu"}}
    new = {"optim": {"lr": 2.0, "device": "cpu"}}
    assert same_settings({"optim": {"lr": 2.0}}, new, defaults)  # recorded before "device" existed
    assert same_settings({"optim": {"lr": 2.0, "device": "cpu"}}, new, defaults)
    assert not same_settings({"optim": {"lr": 2.0}}, {"optim": {"lr": 2.0, "device": "cuda"}}, defaults)
    assert not same_settings({"optim": {"lr": 3.0}}, new, defaults)
    assert not same_settings({"optim": {"lr": 2.0, "device": "cpu", "gone": 1}}, new, defaults)
    assert not same_settings(None, new, defaults)
    # a list setting recorded as text before it became a tuple (widths "20:22" is [20, 21, 22])
    assert same_settings({"data": {"widths": "20:22"}}, {"data": {"widths": [20, 21, 22]}}, {})
    assert not same_settings({"data": {"widths": "20:23"}}, {"data": {"widths": [20, 21, 22]}}, {})
    assert not same_settings({"data": {"widths": "x"}}, {"data": {"widths": [20]}}, {})


@pytest.mark.parametrize("spec,msg", [
    ({"runs": []}, "non-empty"),
    ({"runs": [{"name": "a"}, {"name": "a"}]}, "unique"),
    ({"base": "tiny", "runs": [{"name": "a", "model": {"n_layers": 3}}]}, "unknown model setting"),
    ({"base": "huge", "runs": [{"name": "a"}]}, "unknown base preset"),
])
def test_bad_sweep_configs(tmp_path, spec, msg):
    from linebreak.study.sweep import run_sweep

    with pytest.raises(UserError, match=msg):
        run_sweep(_write(tmp_path / "s.json", spec), tmp_path / "out", log=lambda m: None)


def test_sweep_cli_missing_config(cli, tmp_path):
    rc, _, err = cli("sweep", "--config", tmp_path / "nope.json", "--out", tmp_path / "o")
    assert rc == 2 and "not found" in err and "Traceback" not in err


def test_parallel_sweep_script_runs_side_by_side_and_merges(tmp_path):
    """scripts/parallel_sweep.py: each run in its own folder, two at a time; the merged record holds the rows
    ``linebreak sweep`` would write (two runs of the same settings give the same numbers); a deadline stops the
    rest and the record says so; bad input is one line with exit 2."""
    import subprocess
    import sys
    from pathlib import Path

    script = [sys.executable, str(Path(__file__).parents[1] / "scripts" / "parallel_sweep.py")]
    spec = _write(tmp_path / "s.json", {
        "base": "tiny", "common": {"optim": {"steps": 30, "eval_every": 30}},
        "runs": [{"name": "a"}, {"name": "b", "model": {"init_seed": 1}, "optim": {"seed": 1}}, {"name": "c"}]})
    out = tmp_path / "out"
    p = subprocess.run([*script, "--config", spec, "--out", out, "--jobs", "2"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    rec = json.loads((out / "sweep.json").read_text())
    assert set(rec["status"].values()) == {"done"} and [r["name"] for r in rec["runs"]] == ["a", "b", "c"]
    a, b, c = rec["runs"]
    assert all((out / n / n / "qk" / "stage.json").is_file() for n in "abc")
    drop = {"name", "wall_s", "train_seconds"}
    assert {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in c.items() if k not in drop}
    assert a["settings"] != b["settings"] and a["pc1"] != b["pc1"]
    assert "| a |" in (out / "summary.md").read_text() or "| **a** |" in (out / "summary.md").read_text()

    p = subprocess.run([*script, "--config", spec, "--out", tmp_path / "late", "--deadline", "0"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    late = json.loads((tmp_path / "late" / "sweep.json").read_text())
    assert late["runs"] == [] and set(late["status"].values()) == {"not started"}

    for args, msg in ((["--config", tmp_path / "none.json"], "not found"), (["--config", spec, "--jobs", "0"],
                                                                           "--jobs must be positive")):
        p = subprocess.run([*script, *args, "--out", tmp_path / "bad"], capture_output=True, text=True)
        assert p.returncode == 2 and msg in p.stderr and len(p.stderr.strip().splitlines()) == 1
