"""The count-code control (linebreak.train.count_code): the hook counts what the label function counts, on a
real corpus and by hand; it is causal; it costs nothing when off; a trained control model saves, loads (with
its code) and gives the logits it had in memory; the CLI flag and bad settings."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from linebreak.corpus import generate_corpus, load_corpus
from linebreak.hooks.load import load_model
from linebreak.io import UserError
from linebreak.presets import TRAIN as PRESETS
from linebreak.train.count_code import CONFIG_KEY, code, code_settings, line_counts
from linebreak.train.loop import train
from linebreak.train.model import ModelConfig, build_model

TINY = PRESETS["tiny"]
CONTROL = dataclasses.replace(TINY.train.model, count_code_control=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return load_corpus(generate_corpus(TINY.data, tmp_path_factory.mktemp("corpus") / "c"))


@pytest.fixture(scope="module")
def run(corpus, tmp_path_factory):
    optim = dataclasses.replace(TINY.train.optim, steps=40, eval_every=20)
    return train(dataclasses.replace(TINY.train, model=CONTROL, optim=optim), corpus,
                 tmp_path_factory.mktemp("model") / "m")


def built(corpus, cfg=CONTROL):
    return build_model(cfg, len(corpus.token_lengths), corpus.bos_id,
                       count_code=code_settings(cfg, corpus.token_lengths, corpus.newline_id)).eval()


def test_hook_adds_the_code_of_the_labels_count(corpus):
    """On a generated corpus (documents of many lines): what the hook adds to the embedding, decoded back to a
    count, is the label function's count, and at a newline the length of the line it ends."""
    model = built(corpus)
    ids = corpus.splits["validation"].input_ids
    lab = corpus.labels("validation")
    assert (lab["is_newline"].sum(1) >= 3).all()  # several newlines in every document
    x = torch.as_tensor(ids)
    emb = model.get_input_embeddings()
    with torch.no_grad():
        added = (emb(x) - emb.weight[x]).double().numpy()
    table = code(np.arange(200), CONTROL.count_code_periods, CONTROL.count_code_norm, CONTROL.d_model)
    decoded = (added @ table.T).argmax(-1)  # every code has the same norm: the nearest is the largest dot
    want = np.where(lab["is_newline"], lab["line_len"], lab["count"])
    assert np.array_equal(decoded, want)
    assert np.allclose(added, table[want], atol=1e-6)  # float32 of the float64 code
    assert np.allclose(np.linalg.norm(added, axis=-1), CONTROL.count_code_norm, atol=1e-5)


def test_line_counts_by_hand_and_causal():
    # <bos> "ab" " cde" \n \n "f" " gh" \n: counts 0 2 6, the newline carries 6, an empty line 0, then 1 4, 4
    lengths = np.array([0, 1, 2, 4, 1, 3])  # by id: <bos>, \n, "ab", " cde", "f", " gh"
    ids = np.array([[0, 2, 3, 1, 1, 4, 5, 1]])
    assert line_counts(ids, lengths, 1).tolist() == [[0, 2, 6, 6, 0, 1, 4, 4]]
    changed = ids.copy()
    changed[0, 5:] = [2, 3, 3]  # later tokens never change an earlier token's count
    assert line_counts(changed, lengths, 1)[0, :5].tolist() == [0, 2, 6, 6, 0]


def test_off_is_the_plain_model(corpus):
    """Off (the default): no hook, no key in the config, the same weights as a build without the option."""
    plain = build_model(TINY.train.model, len(corpus.token_lengths), corpus.bos_id)
    assert not ModelConfig().count_code_control
    assert code_settings(TINY.train.model, corpus.token_lengths, corpus.newline_id) is None
    assert not plain.get_input_embeddings()._forward_hooks and not hasattr(plain.config, CONFIG_KEY)
    control = built(corpus)  # the code has no parameters: the same initial weights
    a, b = plain.state_dict(), control.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_trained_control_loads_with_its_code(run, corpus):
    from transformers import AutoModelForCausalLM

    saved = json.loads((run.out_dir / "config.json").read_text())[CONFIG_KEY]
    assert saved["periods"] == [7, 13, 29, 61] and saved["newline_id"] == corpus.newline_id
    assert saved["token_lengths"] == corpus.token_lengths.tolist()
    assert json.loads((run.out_dir / "train_config.json").read_text())["model"]["count_code_control"] is True
    loaded, _ = load_model(run.out_dir)
    ids = torch.as_tensor(corpus.splits["validation"].input_ids[:4])
    with torch.no_grad():
        a, b = loaded(input_ids=ids).logits, run.model(input_ids=ids).logits
    # the same weights, code and kernels (as tests/test_train.py's bound: summation order only)
    assert torch.allclose(a, b, rtol=0, atol=256 * torch.finfo(torch.float32).eps * float(b.abs().max()))
    bare = AutoModelForCausalLM.from_pretrained(str(run.out_dir), attn_implementation="eager").eval()
    with torch.no_grad():  # without its code (a plain from_pretrained) it is another model
        assert (bare(input_ids=ids).logits - b).abs().max() > 0.1
    from linebreak.train.count_code import attach_count_code

    assert attach_count_code(loaded) is None  # attached once only


def test_cli_flag_and_preset(cli, corpus, tmp_path):
    rc, out, err = cli("train", "--corpus", corpus.path, "--out", tmp_path / "m", "--preset", "tiny",
                       "--steps", "4", "--eval-every", "2", "--count-code-control", "true",
                       "--count-code-periods", "5,11")
    assert rc == 0, err
    assert "count-code control on" in out
    assert json.loads((tmp_path / "m" / "config.json").read_text())[CONFIG_KEY]["periods"] == [5, 11]
    assert PRESETS["count-code-control"].train.model == dataclasses.replace(PRESETS["default"].train.model,
                                                                           count_code_control=True)


@pytest.mark.parametrize("bad, message", [
    ({"count_code_periods": (1, 7)}, "periods >= 2"),
    ({"count_code_periods": tuple(range(2, 40)), "d_model": 64, "count_code_control": True}, "d_model"),
    ({"count_code_norm": 0.0}, "count_code_norm"),
])
def test_bad_settings(bad, message):
    with pytest.raises(UserError, match=message):
        ModelConfig(**{**dataclasses.asdict(TINY.train.model), **bad})
    ModelConfig(d_model=4, n_head=1)  # periods that need more coordinates than d_model matter only when on


def test_builder_refuses_a_missing_or_foreign_code(corpus):
    with pytest.raises(UserError, match="none was given"):
        build_model(CONTROL, len(corpus.token_lengths), corpus.bos_id)
    code_ = code_settings(CONTROL, corpus.token_lengths, corpus.newline_id)
    with pytest.raises(UserError, match="without count_code_control"):
        build_model(TINY.train.model, len(corpus.token_lengths), corpus.bos_id, count_code=code_)
    with pytest.raises(UserError, match="differ"):
        build_model(dataclasses.replace(CONTROL, count_code_norm=2.0), len(corpus.token_lengths), corpus.bos_id,
                    count_code=code_)


def test_random_init_control_keeps_the_code(run, corpus, tmp_path):
    """The probe stage's random-init control of a count-code model has the same fixed code (it is part of the
    architecture, not of the training), so the control and the model differ only by training."""
    from linebreak.capture.control import save_control_model

    path = save_control_model(run.model, corpus, tmp_path / "ctrl", CONTROL)
    assert json.loads((path / "config.json").read_text())[CONFIG_KEY] == json.loads(
        (run.out_dir / "config.json").read_text())[CONFIG_KEY]
    ctrl, _ = load_model(path)
    ids = torch.as_tensor(corpus.splits["validation"].input_ids[:2])
    seen = {}
    handle = ctrl.get_input_embeddings().register_forward_hook(lambda m, i, o: seen.update(out=o))
    with torch.no_grad():
        ctrl(input_ids=ids)
    handle.remove()
    raw = ctrl.get_input_embeddings().weight[ids]
    assert (seen["out"] - raw).abs().max() > 0.1  # the code was added on top of the embedding
