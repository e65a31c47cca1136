"""The helix-and-twist sweep: a tiny two-architecture sweep end to end, resumable, and bad configs refused."""

import json

import pytest

from linebreak.io import UserError


def _write(path, spec):
    path.write_text(json.dumps(spec))
    return path


def test_tiny_sweep_records_every_number_and_resumes(tmp_path):
    from linebreak.sweep import TARGETS, run_sweep

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
    # ... and dropped once they change (its stages are then recomputed when it is run again)
    changed = _write(tmp_path / "s2.json", {
        "base": "tiny", "common": {"optim": {"steps": 60, "eval_every": 30}},
        "runs": [{"name": "gpt2", "model": {"d_model": 16}}, {"name": "rotary", "model": {"arch": "llama",
                                                                                          "pos": "rotary"}}]})
    assert [r["name"] for r in run_sweep(changed, tmp_path / "out", only=["rotary"], log=logs.append)["runs"]] \
        == ["rotary"]


@pytest.mark.parametrize("spec,msg", [
    ({"runs": []}, "non-empty"),
    ({"runs": [{"name": "a"}, {"name": "a"}]}, "unique"),
    ({"base": "tiny", "runs": [{"name": "a", "model": {"n_layers": 3}}]}, "unknown model setting"),
    ({"base": "huge", "runs": [{"name": "a"}]}, "unknown base preset"),
])
def test_bad_sweep_configs(tmp_path, spec, msg):
    from linebreak.sweep import run_sweep

    with pytest.raises(UserError, match=msg):
        run_sweep(_write(tmp_path / "s.json", spec), tmp_path / "out", log=lambda m: None)


def test_sweep_cli_missing_config(cli, tmp_path):
    rc, _, err = cli("sweep", "--config", tmp_path / "nope.json", "--out", tmp_path / "o")
    assert rc == 2 and "not found" in err and "Traceback" not in err
