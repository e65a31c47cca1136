"""A real (shortened) `fast` grokking run: memorise, then a late jump onto a few key frequencies.

One run of the `fast` preset cut to 1000 steps (~40-60 s on 2 cores), shared by the tests in this module.
"""

import json

import pytest

STEPS = 1000


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import contextlib
    import io

    import torch

    from linebreak.cli import main

    threads = torch.get_num_threads()
    out = tmp_path_factory.mktemp("grok") / "fast"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["grok", "--preset", "fast", "--out", str(out), "--steps", str(STEPS), "--eval-every", "50",
                   "--checkpoint-every", "500", "--threads", "1", "--no-progress"])
    torch.set_num_threads(threads)  # one thread: faster than two on a busy 2-core machine
    assert rc == 0
    return out, json.loads((out / "summary.json").read_text()), buf.getvalue()


def test_memorises_first_then_groks(run):
    out, s, table = run
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(0, STEPS + 1, 50))
    chance = 1 / s["config"]["p"]
    mem = s["memorisation_step"]
    assert mem is not None and mem <= 200
    at_mem = next(r for r in log if r["step"] == mem)
    assert at_mem["test_acc"] < 5 * chance  # train 100 % while test is still near chance
    assert s["grok_step"] is not None and s["grok_step"] >= 3 * mem  # a late jump
    assert s["final_test_acc"] >= 0.98 and s["final_train_acc"] == 1.0
    assert "grok (test accuracy" not in table and "key frequencies of W_E" in table


def test_key_frequencies_and_progress_measures(run):
    out, s, _ = run
    assert 2 <= s["n_key_frequencies"] <= 6
    order = s["loss_ordering"]
    assert order["restricted_falls_before_test"] is True
    assert order["excluded_rises_while_test_high"] is True
    assert s["final_restricted_loss"] < 0.01 < s["final_excluded_loss"]
    assert s["neurons_on_key_frequencies_share"] > 0.5
    ph = s["phases"]
    assert ph["memorised"] < ph["circuit"] <= ph["cleanup"]
    for name in ("grok_curves", "progress_measures", "embedding_spectrum", "neuron_clusters"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 10_000
        assert f"{name}.png" in s["figures"]


def test_existing_results_and_foreign_checkpoints_are_refused(run, cli, tmp_path):
    out, s, _ = run
    rc, _, err = cli("grok", "--preset", "fast", "--out", out, "--no-progress")
    assert rc == 2 and "--force" in err and (out / "summary.json").is_file()
    ckpt = out / "checkpoints" / f"step_{STEPS:06d}.safetensors"
    rc, _, err = cli("grok", "--preset", "fast", "--p", "61", "--out", tmp_path / "o", "--resume-from", ckpt,
                     "--no-progress")
    assert rc == 2 and "P = 59" in err and err.count("\n") == 1
    rc, _, err = cli("grok", "--preset", "fast", "--out", tmp_path / "o", "--resume-from", out / "summary.json",
                     "--no-progress")
    assert rc == 2 and err.count("\n") == 1


def test_resume_continues_from_the_checkpoint(run, cli, tmp_path):
    out, s, _ = run
    ckpt = out / "checkpoints" / f"step_{STEPS:06d}.safetensors"
    rc, _, err = cli("grok", "--preset", "fast", "--out", tmp_path / "r", "--resume-from", ckpt,
                     "--steps", str(STEPS + 20), "--eval-every", "10", "--no-figures", "--no-progress")
    assert rc == 0, err
    log = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert log[0]["step"] == STEPS and log[-1]["step"] == STEPS + 20
    assert log[0]["test_acc"] == pytest.approx(s["final_test_acc"])
    assert log[-1]["test_acc"] >= 0.98


@pytest.mark.slow
def test_nanda_preset_groks(tmp_path):
    """The paper's run (about an hour on 2 cores): `pytest -m slow tests/test_modp_grok.py`."""
    from linebreak.grok.train import run_grok
    from linebreak.presets import GROK as PRESETS

    s = run_grok(PRESETS["nanda"], tmp_path / "nanda", progress=True).summary
    assert s.memorisation_step is not None and s.grok_step is not None
    assert s.memorisation_step * 5 < s.grok_step  # train 100 % long before test passes 95 %
    assert s.final_test_acc >= 0.99
    assert 3 <= s.n_key_frequencies <= 6
    assert s.loss_ordering["restricted_falls_before_test"] is True
    assert s.loss_ordering["excluded_rises_while_test_high"] is True
