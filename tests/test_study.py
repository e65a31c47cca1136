"""The one-command study: a tiny end-to-end run, its report, stage reuse, external models, bad input."""

import json
import math
import os
from pathlib import Path

import pytest

from linebreak.study.findings.common import check

SECTIONS = {"corpus", "model", "probe", "qk", "causal"}


def check_report(rec: dict, sections=SECTIONS) -> None:
    """Every section present, every finding's number computed, every verdict agreeing with its checks."""
    assert sections <= set(rec["sections"]), sections - set(rec["sections"])
    assert set(rec["versions"]) >= {"python", "torch", "transformers", "linebreak"}
    assert rec["settings"]["seed"] is not None and rec["settings"]["total_wall_s"] > 0
    for name, st in rec["stages"].items():
        assert st["wall_s"] is not None and st["wall_s"] >= 0, name
    assert rec["findings"], "no findings"
    for f in rec["findings"]:
        assert f["value"] is not None, f["key"]
        assert isinstance(f["value"], bool | int | float | list), f["key"]
        if isinstance(f["value"], float):
            assert math.isfinite(f["value"]), f["key"]
        assert f["sentence"] and "nan" not in f["sentence"].lower().split(), f["key"]
        checks = f["details"]["checks"]
        if checks:
            assert f["agrees"] == check(checks), f"{f['key']}: verdict disagrees with its numbers"
        if f["anchor_key"]:
            assert f["anchor"] is not None and f["anchor_source"], f["key"]
    md = rec.get("_md")
    if md:
        for f in rec["findings"]:
            assert f["sentence"] in md


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    from linebreak.study.pipeline import StudyConfig, run_study

    out = tmp_path_factory.mktemp("study")
    logs: list[str] = []
    rec = run_study(StudyConfig(preset="tiny", skip="grok"), out, log=logs.append)
    return out, rec, logs


def test_tiny_study_report_is_complete_and_consistent(tiny_study):
    out, rec, _ = tiny_study
    rec = dict(rec, _md=(out / "report.md").read_text())
    check_report(rec)
    assert (out / "report.md").read_text().startswith("# linebreak study report")
    figs = [f["figure"] for f in rec["findings"] if f["figure"]]
    assert figs and all((out / f).is_file() for f in figs)
    assert {"qk_verdict", "qk_comparison", "qk_probe_route", "qk_key_side", "qk_picture"} <= {
        f["key"] for f in rec["findings"]}
    # the trained model is compared with its random-init control, layer by layer
    man = rec["sections"]["probe"]
    assert set(man["model"]) == set(man["control"]) and man["best_layer"] in man["model"]
    assert (out / "probe" / "probe.json").is_file() and (out / "probe" / "control" / "probe.json").is_file()
    assert "## References" in (out / "report.md").read_text() and "shared/research" not in json.dumps(rec)


def test_picture_finding_names_the_published_picture_the_numbers_match(tiny_study):
    """Twist -> Gurnee et al.; no twist and a mostly additive most-responsive head -> Hindupur et al.; else
    neither. The branches are driven by editing the tiny study's own qk result, so each reads real numbers."""
    import dataclasses

    from linebreak.qk.attention import response_range
    from linebreak.qk.result import QKResult
    from linebreak.rules.qk import ADDITIVE_MIN_SHARE
    from linebreak.study.findings import qk_findings

    out, _, _ = tiny_study
    q = QKResult.load(out / "qk" / "qk.json")
    moving = max(q.heads, key=response_range)

    def picture(passes: bool, interaction: float):
        heads = [dataclasses.replace(h, comparison=dataclasses.replace(h.comparison, interaction_share=interaction))
                 if h.name == moving.name else h for h in q.heads]
        edited = dataclasses.replace(q, heads=heads, verdict=dataclasses.replace(q.verdict, passes=passes))
        return next(f for f in qk_findings(edited, {}) if f.key == "qk_picture")

    additive = picture(False, 0.2)
    assert "matches Hindupur et al.'s" in additive.sentence and additive.agrees is True
    assert additive.value == pytest.approx(0.8) and f"({moving.name})" in additive.sentence
    twisted = picture(True, 0.2)
    assert "matches Gurnee et al.'s" in twisted.sentence and twisted.agrees is False
    mixed = picture(False, 1 - ADDITIVE_MIN_SHARE)  # exactly half additive is not "mostly"
    assert "neither clearly" in mixed.sentence and mixed.agrees is False


def test_rerun_reuses_finished_stages(tiny_study):
    from linebreak.study.pipeline import StudyConfig, run_study

    out, rec, _ = tiny_study
    logs: list[str] = []
    rec2 = run_study(StudyConfig(preset="tiny", skip="grok"), out, log=logs.append)
    assert all(st["reused"] for k, st in rec2["stages"].items() if k != "figures_and_report")
    assert [f["value"] for f in rec2["findings"]] == [f["value"] for f in rec["findings"]]


def test_stage_of_an_older_layout_is_recomputed(tiny_study, tmp_path):
    """A finished stage whose stage.json summary is not of its typed result's format (written before typed
    results) counts as unfinished: it is recomputed, with one line in the log, and gives the same numbers."""
    import shutil

    from linebreak.study.pipeline import StudyConfig, run_study

    out, rec, _ = tiny_study
    copy = tmp_path / "s"
    shutil.copytree(out, copy)
    st = json.loads((copy / "probe" / "stage.json").read_text())
    st["summary"] = {k: v["layers"] for k, v in st["summary"].items() if k != "format"}  # the old layout
    (copy / "probe" / "stage.json").write_text(json.dumps(st))
    logs: list[str] = []
    rec2 = run_study(StudyConfig(preset="tiny", skip="grok"), copy, log=logs.append)
    assert [m for m in logs if "recomputing" in m] == [m for m in logs if m.startswith("[probe] recomputing")]
    assert len([m for m in logs if "recomputing" in m]) == 1
    assert not rec2["stages"]["probe"]["reused"] and rec2["stages"]["model"]["reused"]
    assert rec2["sections"]["probe"] == rec["sections"]["probe"]


def test_changed_input_reruns_downstream_only(tiny_study, tmp_path):
    import shutil

    from linebreak.study.pipeline import StudyConfig, run_study

    out, _, _ = tiny_study
    copy = tmp_path / "s"
    shutil.copytree(out, copy)
    rec = run_study(StudyConfig(preset="tiny", skip="grok,causal"), copy, log=lambda m: None)
    assert rec["stages"]["corpus"]["reused"] and rec["stages"]["model"]["reused"]


@pytest.mark.parametrize("arch,pos", [("gpt2", "learned"), ("llama", "rotary")])
def test_external_model_on_rewrapped_text(tmp_path, arch, pos):
    """`study --model DIR --text FILE`: any local HF causal LM, its own tokenizer, the user's prose."""
    import numpy as np

    from linebreak.corpus.tokenizer import build_tokenizer
    from linebreak.study.pipeline import StudyConfig, run_study
    from linebreak.train.model import ModelConfig, build_model

    rng = np.random.default_rng(0)
    words = sorted({"".join(rng.choice(list("abcdefghij"), size=rng.integers(1, 9))) for _ in range(60)})
    (tmp_path / "prose.txt").write_text(" ".join(rng.choice(words, size=5000)))
    tok = build_tokenizer(words)
    m = build_model(ModelConfig(arch=arch, pos=pos, n_layer=2, d_model=32, n_head=2, d_mlp=64, n_ctx=64),
                    len(tok.get_vocab()), tok.bos_token_id)
    m.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    rec = run_study(StudyConfig(preset="tiny", model=str(tmp_path / "m"), text=str(tmp_path / "prose.txt"),
                                widths="15:30", skip="causal,grok"), tmp_path / "out", log=lambda m: None)
    check_report(rec, {"corpus", "probe", "qk"})
    assert "model" not in rec["stages"]  # nothing was trained
    assert rec["sections"]["qk"]["layout"]["arch"] == arch


@pytest.mark.parametrize("argv,msg", [
    (["--preset", "huge"], "unknown preset"),
    (["--skip", "corpus"], "cannot skip"),
    (["--model", "somewhere"], "--text"),
    (["--skip", "qk"], "needs the qk stage"),
])
def test_bad_input_is_one_line_error(cli, tmp_path, argv, msg):
    rc, out, err = cli("study", "--out", tmp_path / "o", *argv)
    assert rc == 2 and msg in err and err.count("\n") == 1 and "Traceback" not in err


def test_default_study_report_from_ci():
    """CI runs the default study once (.ci/run) and points LINEBREAK_STUDY_REPORT at its report.json."""
    path = os.environ.get("LINEBREAK_STUDY_REPORT")
    if not path:
        pytest.skip("LINEBREAK_STUDY_REPORT not set (CI sets it after running the default study)")
    rec = json.loads(Path(path).read_text())
    rec["_md"] = (Path(path).parent / "report.md").read_text()
    check_report(rec, SECTIONS | {"grok"})
    assert rec["settings"]["study"]["preset"] == "default"
    assert {"probe", "grok"} <= set(rec["stages"]) and "manifold" not in rec["stages"]  # the stage's new name
