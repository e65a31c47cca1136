"""scripts/diff_reports.py: two report trees differ only where a number or string differs, not in wall times."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "diff_reports.py"

REPORT = {
    "title": "linebreak study report",
    "settings": {"seed": 0, "total_wall_s": 340.2, "stages_wall_s": 385.3},
    "versions": {"torch": "2.13.0+cpu"},
    "stages": {"manifold": {"wall_s": 14.7, "reused": False, "fingerprint": "eb03", "path": "runs/study/manifold"}},
    "findings": [{"key": "count_probe_r2", "value": 0.9871234, "sentence": "R^2 0.987", "figure": "figures/a.png"},
                 {"key": "qk_verdict", "value": True, "sentence": "passes"}],
    "sections": {"model": {"info_captured": 0.95, "train_seconds": 259.1, "tokens_per_second": 15806.8},
                 "manifold": {"best_layer": "resid_post.2", "model": {"resid_post.2": {"r2": [0.5, None, 1]}}}},
}


def run(a: dict, b: dict, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    p = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "a.json"), str(tmp_path / "b.json"), *args],
                       capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def test_identical_but_for_wall_times_fingerprints_paths_versions_and_format(tmp_path):
    b = copy.deepcopy(REPORT)
    b["settings"] |= {"total_wall_s": 1.0, "stages_wall_s": 2.0}
    b["stages"]["manifold"] |= {"wall_s": 0.1, "fingerprint": "ffff", "path": "/elsewhere"}
    b["sections"]["model"] |= {"train_seconds": 1.0, "tokens_per_second": 1.0, "format": "linebreak-train/1"}
    b["versions"]["torch"] = "9"
    b["findings"][0]["figure"] = "figures/b.png"
    rc, out, _ = run(REPORT, b, tmp_path)
    assert rc == 0, out
    assert "0 difference(s)" in out and "compared 5 numbers" in out  # seed, value, info, two r2 (null is no number)


def test_one_number_differs(tmp_path):
    b = copy.deepcopy(REPORT)
    b["sections"]["manifold"]["model"]["resid_post.2"]["r2"][0] = 0.5000000000000001
    rc, out, _ = run(REPORT, b, tmp_path)
    assert rc == 1
    assert 'sections.manifold.model["resid_post.2"].r2[0]: 0.5 -> 0.5000000000000001' in out
    assert "1 difference(s)" in out


def test_strings_types_and_missing_values_differ(tmp_path):
    b = copy.deepcopy(REPORT)
    b["findings"][1]["value"] = 1  # true is not 1
    b["findings"][0]["sentence"] = "R^2 0.988"
    del b["sections"]["model"]["info_captured"]
    rc, out, _ = run(REPORT, b, tmp_path)
    assert rc == 1 and "3 difference(s)" in out
    assert "findings[key=qk_verdict].value: true -> 1" in out
    assert 'findings[key=count_probe_r2].sentence: "R^2 0.987" -> "R^2 0.988"' in out
    assert "sections.model.info_captured: only in the first file (0.95)" in out


def test_findings_are_matched_by_key_not_position(tmp_path):
    b = copy.deepcopy(REPORT)
    b["findings"].reverse()
    assert run(REPORT, b, tmp_path)[0] == 0


def test_rename_of_a_section_and_stage(tmp_path):
    b = copy.deepcopy(REPORT)
    b["stages"]["probe"] = b["stages"].pop("manifold")
    b["sections"]["probe"] = b["sections"].pop("manifold")
    rc, out, _ = run(REPORT, b, tmp_path)
    assert rc == 1 and "sections.manifold: only in the first file" in out and "sections.probe: only in the second" \
        in out
    rc, out, _ = run(REPORT, b, tmp_path, "--rename", "manifold=probe")
    assert rc == 0, out
    b["sections"]["probe"]["best_layer"] = "resid_post.1"
    rc, out, _ = run(REPORT, b, tmp_path, "--rename", "manifold=probe")
    assert rc == 1 and 'sections.probe.best_layer: "resid_post.2" -> "resid_post.1"' in out


def test_ignore_and_grok_summary_style_files(tmp_path):
    a = {"config": {"p": 59}, "grok_step": 800, "train_seconds": 35.1, "wall_seconds": 38.6,
         "phases": [{"step": 100, "test_acc": 0.1}], "figures": {"curves": "figures/grok_curves.png"}}
    b = copy.deepcopy(a) | {"train_seconds": 1.0, "wall_seconds": 2.0}
    assert run(a, b, tmp_path)[0] == 0
    b["grok_step"] = 825
    rc, out, _ = run(a, b, tmp_path)
    assert rc == 1 and "grok_step: 800 -> 825" in out
    assert run(a, b, tmp_path, "--ignore", "grok_*")[0] == 0


@pytest.mark.parametrize("args,msg", [(["--rename", "manifold"], "OLD=NEW"), ([], "not found")])
def test_bad_input_is_one_line_with_exit_2(tmp_path, args, msg):
    if msg == "not found":
        p = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "none.json"), str(tmp_path / "x.json")],
                           capture_output=True, text=True)
        rc, err = p.returncode, p.stderr
    else:
        rc, _, err = run(REPORT, REPORT, tmp_path, *args)
    assert rc == 2 and msg in err and len(err.strip().splitlines()) == 1


def test_rtol_counts_rounding_apart_from_real_differences(tmp_path):
    """Two machines round float64 differently: --rtol counts such numbers as equal (and says how many), while a
    real difference still fails; --max-lines keeps the list short and counts the rest per section."""
    b = copy.deepcopy(REPORT)
    b["sections"]["model"]["info_captured"] = 0.95 * (1 + 1e-15)  # one ulp or so away
    rc, out, _ = run(REPORT, b, tmp_path)
    assert rc == 1 and "info_captured" in out
    rc, out, _ = run(REPORT, b, tmp_path, "--rtol", "1e-12")
    assert rc == 0 and "1 more equal within rtol 1e-12" in out
    b["findings"][0]["value"] = 0.9871235  # a real change, far beyond rounding
    b["sections"]["manifold"]["best_layer"] = "resid_post.1"
    rc, out, _ = run(REPORT, b, tmp_path, "--rtol", "1e-12", "--max-lines", "1")
    assert rc == 1 and "2 difference(s)" in out and "... 1 more" in out and "sections.manifold 1" in out
    rc, _, err = run(REPORT, b, tmp_path, "--rtol", "-1")
    assert rc == 2 and "must be >= 0" in err
