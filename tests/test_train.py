"""Training: a tiny run learns the newlines, its folder loads in Hugging Face, resume is exact, bad input,
typed metrics that round-trip through JSON, and a corpus too long for the model named with its fix."""

import dataclasses
import json
import shutil

import pytest
from safetensors.numpy import load_file

import linebreak.train.checkpoint as C
from linebreak.corpus import generate_corpus, load_corpus
from linebreak.io import UserError
from linebreak.presets import TRAIN as PRESETS
from linebreak.train.loop import train
from linebreak.train.result import TrainMetrics

TINY = PRESETS["tiny"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return load_corpus(generate_corpus(TINY.data, tmp_path_factory.mktemp("corpus") / "c"))


@pytest.fixture(scope="module")
def run(corpus, tmp_path_factory):
    return train(TINY.train, corpus, tmp_path_factory.mktemp("model") / "m")


def test_tiny_run_beats_the_constant_rate(run):
    m = run.metrics
    assert m.newline_ce_oracle < m.newline_ce_posterior < m.newline_ce_constant
    assert m.newline_ce < 0.8 * m.newline_ce_constant  # clearly below the constant-rate baseline
    assert m.info_captured > 0.4 and m.info_captured_oracle < m.info_captured
    first, last = run.history[0], run.history[-1]
    assert first["step"] == 0 and last["step"] == TINY.train.optim.steps
    assert last["newline_ce"] < first["newline_ce"]
    assert m.forced_break_acc > 0.5 and m.no_break_acc > 0.9


def test_output_folder_loads_with_hugging_face(run, corpus):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = run.out_dir
    model = AutoModelForCausalLM.from_pretrained(str(out), attn_implementation="eager")
    tok = AutoTokenizer.from_pretrained(str(out))
    saved, trained = model.state_dict(), run.model.state_dict()
    assert saved.keys() == trained.keys() and all(torch.equal(saved[k], trained[k]) for k in saved)
    ids = torch.as_tensor(corpus.splits["validation"].input_ids[:2])
    with torch.no_grad():
        a, b = model(input_ids=ids).logits, run.model(input_ids=ids).logits
    # the same weights and kernels: only the summation order of a BLAS call may differ, each float32 sum of
    # at most d_mlp = 256 terms by 256 eps relative to its size; bounded here by the largest logit
    assert torch.allclose(a, b, rtol=0, atol=256 * torch.finfo(torch.float32).eps * float(b.abs().max()))
    assert tok.get_vocab() == corpus.tokenizer.get_vocab()
    cfg = json.loads((out / "train_config.json").read_text())
    assert cfg["corpus"]["fingerprint"] == corpus.fingerprint and cfg["model"]["d_model"] == 64
    assert json.loads((out / "metrics.json").read_text())["newline_ce"] == run.metrics.newline_ce
    assert TrainMetrics.load(out / "metrics.json").to_json() == run.metrics.to_json()
    assert len((out / "eval.jsonl").read_text().splitlines()) == len(run.history)
    assert not (out / "checkpoint").exists()


def test_resume_after_interruption_is_exact(corpus, tmp_path, monkeypatch):
    # with training noise on, whose draws must also continue where they stopped
    optim = dataclasses.replace(TINY.train.optim, steps=60, eval_every=20, resid_noise=0.2)
    cfg = dataclasses.replace(TINY.train, optim=optim)
    full = train(cfg, corpus, tmp_path / "full")
    save = C.save

    def save_then_crash(out_dir, model, optimizer, step, record):
        save(out_dir, model, optimizer, step, record)
        if step == 40:
            raise KeyboardInterrupt

    monkeypatch.setattr(C, "save", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, corpus, tmp_path / "cut")
    assert (tmp_path / "cut" / "checkpoint" / "state.json").exists()
    assert not (tmp_path / "cut" / "metrics.json").exists()
    monkeypatch.setattr(C, "save", save)
    shutil.copytree(tmp_path / "cut", tmp_path / "bad")
    (tmp_path / "bad" / "checkpoint" / "optimizer.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(UserError, match="corrupt"):
        train(cfg, corpus, tmp_path / "bad", resume=True)
    other = dataclasses.replace(cfg, optim=dataclasses.replace(optim, lr=1e-3))
    with pytest.raises(UserError, match="same settings"):
        train(other, corpus, tmp_path / "cut", resume=True)
    resumed = train(cfg, corpus, tmp_path / "cut", resume=True)
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    strip = [{k: v for k, v in r.items() if k != "elapsed_s"} for r in full.history]
    assert strip == [{k: v for k, v in r.items() if k != "elapsed_s"} for r in resumed.history]


def test_bad_input(cli, corpus, run, tmp_path):
    out = run.out_dir
    before = (out / "model.safetensors").read_bytes()
    rc, _, err = cli("train", "--corpus", corpus.path, "--out", out, "--preset", "tiny", "--steps", "2")
    assert rc == 2 and "--force" in err and len(err.strip().splitlines()) == 1
    assert (out / "model.safetensors").read_bytes() == before
    rc, _, err = cli("train", "--corpus", corpus.path, "--out", out, "--preset", "tiny", "--resume")
    assert rc == 2 and "nothing to resume" in err
    rc, _, err = cli("train", "--corpus", tmp_path / "none", "--out", tmp_path / "m", "--preset", "tiny")
    assert rc == 2 and "corpus folder not found" in err
    rc, _, err = cli("train", "--corpus", corpus.path, "--out", tmp_path / "m", "--preset", "huge")
    assert rc == 2 and "unknown preset" in err
    rc, _, err = cli("train", "--corpus", corpus.path, "--out", tmp_path / "m", "--preset", "tiny",
                     "--n-ctx", "8")
    assert rc == 2 and "n_ctx" in err
    rc, _, err = cli("train", "--corpus", corpus.path, "--out", tmp_path / "m2", "--preset", "tiny",
                     "--resume")
    assert rc == 2 and "nothing to resume" in err
    rc, _, err = cli("train", "--corpus", corpus.path, "--out", tmp_path / "m3", "--preset", "tiny",
                     "--device", "tpu")
    assert rc == 2 and "device must be cpu, cuda or cuda:N" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m3").exists()


def test_no_cuda_device_is_a_clear_error(cli, corpus, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc, _, err = cli("train", "--corpus", corpus.path, "--out", tmp_path / "m", "--preset", "tiny",
                     "--device", "cuda")
    assert rc == 2 and "sees no CUDA device" in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA device")
def test_training_on_cuda_matches_the_cpu(corpus, tmp_path):
    """The same run on the GPU and on the CPU: the same batches, so nearly the same model (float rounding
    differs); the saved model lives on the CPU and its resumed run on the GPU is exact."""
    import torch

    optim = dataclasses.replace(TINY.train.optim, steps=60, eval_every=20, resid_noise=0.2)
    cpu = train(dataclasses.replace(TINY.train, optim=optim), corpus, tmp_path / "cpu")
    gpu_cfg = dataclasses.replace(TINY.train, optim=dataclasses.replace(optim, device="cuda"))
    gpu = train(gpu_cfg, corpus, tmp_path / "gpu")
    assert next(gpu.model.parameters()).device.type == "cpu"
    # not a rounding bound: 60 steps of training amplify the devices' different rounding, so the check is that
    # the two runs learn about the same (measured differences are far below these)
    assert abs(gpu.metrics.newline_ce - cpu.metrics.newline_ce) < 0.05
    a = load_file(str(tmp_path / "cpu" / "model.safetensors"))
    b = load_file(str(tmp_path / "gpu" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert max(float(abs(a[k] - b[k]).max()) for k in a) < 0.1
    state = gpu.model.state_dict()
    assert all(torch.equal(torch.as_tensor(b[k]), state[k]) for k in b)


def test_cli_trains_and_prints_a_table(cli, corpus, tmp_path):
    rc, out, err = cli("train", "--corpus", corpus.path, "--out", tmp_path / "m", "--preset", "tiny",
                       "--steps", "20", "--eval-every", "10")
    assert rc == 0, err
    assert "info captured (vs posterior)" in out and (tmp_path / "m" / "metrics.json").exists()
    rc, _, err = cli("train", "--corpus", corpus.path, "--out", tmp_path / "m", "--preset", "tiny",
                     "--steps", "20", "--eval-every", "10", "--force")
    assert rc == 0, err


def test_forced_breaks_knowable_vs_first_lines(run):
    """Forced breaks on a first line cannot be foreseen (the width is unknown): the Bayes posterior's accuracy
    there is a ceiling below 1, and the breaks that can be known are a subset that the posterior always gets."""
    m = run.metrics
    assert 0 < m.forced_break_acc_bayes < 1
    assert m.knowable_forced_positions > 0
    assert 0 <= m.forced_break_acc_knowable <= 1


def test_metrics_round_trip_and_refuse_another_format(run):
    """TrainMetrics.to_json() is the metrics record of the last evaluation plus cost and "format"; it reads
    back to the same object, and a file of another format or version is refused in one line."""
    m = run.metrics
    data = m.to_json()
    assert data["format"] == "linebreak-train/1" and list(data)[1:4] == ["step", "tokens", "train_loss"]
    last = {k: v for k, v in run.history[-1].items() if k not in ("lr", "elapsed_s")}
    assert {k: v for k, v in data.items() if k in last} == last  # the record, key for key
    assert set(data) - set(last) == {"format", "train_seconds", "tokens_per_second", "n_params", "threads"}
    back = TrainMetrics.from_json(json.loads(json.dumps(data)))
    assert back.to_json() == data and back.newline_acc_by_width == m.newline_acc_by_width
    assert all(isinstance(w, int) for w in back.newline_acc_by_width)
    for bad in ({**data, "format": "linebreak-train/0"}, {k: v for k, v in data.items() if k != "format"},
                {**data, "format": "linebreak-grok/1"}):
        with pytest.raises(UserError, match="format") as e:
            TrainMetrics.from_json(bad)
        assert "\n" not in str(e.value)
    undefined = TrainMetrics.from_json({**data, "forced_break_acc": None})
    assert undefined.forced_break_acc is None  # not defined stays None, as in the JSON


def test_corpus_longer_than_n_ctx_names_the_fix(cli, tmp_path):
    """A new user's first two commands: the default corpus (256-token documents) and the tiny model (64):
    the error names both fixes, and the fix it names for the preset works."""
    corpus, model = tmp_path / "corpus", tmp_path / "model"
    rc, _, err = cli("generate", "--out", corpus, "--n-train", "16", "--n-val", "4")
    assert rc == 0, err
    rc, _, err = cli("train", "--corpus", corpus, "--out", model, "--preset", "tiny")
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "n_ctx 64 is shorter than the documents (256 tokens)" in err and "--n-ctx 256" in err
    assert f"linebreak generate --preset tiny --out {corpus} --force" in err
    assert not model.exists()
    rc, _, err = cli("generate", "--preset", "tiny", "--out", corpus, "--force", "--n-train", "16", "--n-val", "4")
    assert rc == 0, err
    rc, _, err = cli("train", "--corpus", corpus, "--out", model, "--preset", "tiny", "--steps", "2",
                     "--eval-every", "1", "--eval-docs", "4")
    assert rc == 0, err
    rc, _, err = cli("train", "--corpus", corpus, "--out", model, "--preset", "tiny", "--n-ctx", "32")
    assert rc == 2 and "--n-ctx 64" in err and "linebreak generate" not in err  # the preset's corpus would not fit


def test_prose_metrics_have_no_pad_fields(run):
    """A wrapped-prose run's metrics.json is what it was before table corpora: no pad metrics in it."""
    saved = json.loads((run.out_dir / "metrics.json").read_text())
    assert not any(k.startswith("pad_") for k in saved) and run.metrics.pad_acc_rows1 is None
    assert json.loads((run.out_dir / "train_config.json").read_text())["optim"]["pad_loss_weight"] == 1.0
