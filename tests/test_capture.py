"""Capture on tiny random GPT-2 and Llama models over a tiny corpus: TransformerLens names and shapes, labels
aligned with the corpus, queries/keys equal to W_Q/W_K applied to what attention reads, the residual stream
consistent across hooks, bounded memory, and one-line errors on bad input."""

import numpy as np
import pytest
import torch
from test_arch import EPS32, affine_tol

from linebreak.capture.collect import capture
from linebreak.capture.config import CaptureConfig
from linebreak.capture.store import load_activations, save_activations
from linebreak.hooks import arch, load
from linebreak.io import UserError


def gpt2(corpus, n_layer=2, seed=0):
    from linebreak.train.model import ModelConfig, build_model

    cfg = ModelConfig(arch="gpt2", n_layer=n_layer, d_model=32, n_head=4, d_mlp=64, n_ctx=64, init_seed=seed)
    return build_model(cfg, vocab_size=len(corpus.token_lengths), bos_id=corpus.bos_id).eval()


def test_gpt2_capture_names_shapes_labels_and_consistency(corpus):
    model = gpt2(corpus)
    a = capture(model, corpus, CaptureConfig(max_docs=6, pattern_docs=2, batch_size=4), progress=False)
    N = 6 * 48
    assert a.meta["n_rows"] == N
    for L in range(2):
        for site in ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "ln1.hook_out"):
            assert a.acts[f"blocks.{L}.{site}"].shape == (N, 32)
        assert a.acts[f"blocks.{L}.attn.hook_q"].shape == (N, 4, 8)
        assert a.acts[f"blocks.{L}.attn.hook_pattern"].shape == (2, 4, 48, 48)
    # labels are the corpus labels at (doc, pos)
    lab = corpus.labels("validation")
    np.testing.assert_array_equal(a.labels["count"], lab["count"][a.labels["doc"], a.labels["pos"]])
    np.testing.assert_array_equal(a.labels["token"], corpus.splits["validation"].input_ids[
        a.labels["doc"], a.labels["pos"]])
    # residual stream: embeddings in, post of L is pre of L+1, ln1 is layer-norm of resid_pre
    ids = torch.from_numpy(a.labels["token"])
    emb = model.transformer.wte.weight[ids] + model.transformer.wpe.weight[torch.from_numpy(a.labels["pos"])]
    assert torch.equal(a.acts["blocks.0.hook_resid_pre"], emb.detach())  # the same float32 sum
    assert torch.equal(a.acts["blocks.0.hook_resid_post"], a.acts["blocks.1.hook_resid_pre"])  # one tensor
    ln = arch.attn_norm(model, 1)
    x64 = a.acts["blocks.1.hook_resid_pre"].double()
    with torch.no_grad():
        g, b = ln.weight.double(), ln.bias.double()
        exact = torch.nn.functional.layer_norm(x64, (32,), g, b, ln.eps)
        normed = (exact - b) / g
        sigma = (x64.var(-1, unbiased=False, keepdim=True) + ln.eps).sqrt()
    # float32 layer norm: the mean over d = 32 terms is off by <= d eps mean|x|, and x - mean by eps (|x| + |mean|),
    # both divided by sigma; the variance is off by a relative (d + 2) eps, then sqrt, division, scale, shift
    tol = ((32 + 8) * EPS32 * (g.abs() * normed.abs() + b.abs())
           + (32 + 2) * EPS32 * g.abs() * (x64.abs() + x64.abs().mean(-1, keepdim=True)) / sigma)
    assert ((a.acts["blocks.1.ln1.hook_out"].double() - exact).abs() <= tol).all()
    # q/k are W_Q/W_K projections of what attention reads
    for L in range(2):
        W_Q, b_Q, W_K, b_K = arch.qk_weights(model, L)
        x = a.acts[f"blocks.{L}.ln1.hook_out"]
        q, k = torch.einsum("nd,hde->nhe", x, W_Q) + b_Q, torch.einsum("nd,hde->nhe", x, W_K) + b_K
        assert ((a.acts[f"blocks.{L}.attn.hook_q"] - q).abs() <= affine_tol(x, W_Q, b_Q)).all()
        assert ((a.acts[f"blocks.{L}.attn.hook_k"] - k).abs() <= affine_tol(x, W_K, b_K)).all()
    P = a.acts["blocks.0.attn.hook_pattern"]
    # each row: 48 float32 probabilities, each rounded once after the division, summed in float32
    torch.testing.assert_close(P.sum(-1), torch.ones(2, 4, 48), rtol=0, atol=(48 + 2) * EPS32)
    assert torch.triu(P, diagonal=1).abs().max() == 0  # causal


def test_llama_gqa_capture(corpus):
    from test_arch import tiny_model

    model = tiny_model("llama", d=32)
    assert arch.layout(model).n_kv_heads == 2
    a = capture(model, corpus, CaptureConfig(max_docs=3, sites="ln1,k,resid_mid", layers="1"), progress=False)
    assert set(a.acts) == {"blocks.1.ln1.hook_out", "blocks.1.attn.hook_k", "blocks.1.hook_resid_mid"}
    _, _, W_K, b_K = arch.qk_weights(model, 1)
    k = a.acts["blocks.1.attn.hook_k"]
    assert k.shape == (3 * 48, 2, 8)  # one key per key/value head, as TransformerLens' hook_k
    x = a.acts["blocks.1.ln1.hook_out"]
    W_K, b_K = W_K[::2], b_K[::2]  # qk_weights repeats each key/value head for its 2 query heads
    assert ((k - (torch.einsum("nd,hde->nhe", x, W_K) + b_K)).abs() <= affine_tol(x, W_K, b_K)).all()


def test_token_cap_dtype_and_round_trip(corpus, tmp_path):
    model = gpt2(corpus, n_layer=1)
    cfg = CaptureConfig(max_docs=10, max_tokens=100, sites="resid_post,pattern", store_dtype="float16",
                        pattern_docs=1, batch_size=3)
    a = capture(model, corpus, cfg, progress=False)
    b = capture(model, corpus, cfg, progress=False)
    assert a.meta["n_rows"] == 100 and a.acts["blocks.0.hook_resid_post"].dtype == torch.float16
    np.testing.assert_array_equal(a.labels["doc"], b.labels["doc"])  # seeded sample
    save_activations(a, tmp_path / "acts")
    c = load_activations(tmp_path / "acts")
    assert torch.equal(c.acts["blocks.0.hook_resid_post"], a.acts["blocks.0.hook_resid_post"])
    np.testing.assert_array_equal(c.labels["remaining"], a.labels["remaining"])
    assert c.meta["layers"] == [0] and c.layers("resid_post") == [0]


def test_a_block_input_is_kept_once_and_saved_under_both_names(corpus, tmp_path):
    """resid_pre of layer L is resid_post of layer L - 1: one tensor in memory (and in the memory plan), both
    names on disk, equal to what a hook on the block's input alone captures."""
    from linebreak.capture.collect import planned_bytes

    model = gpt2(corpus, n_layer=3)
    both = capture(model, corpus, CaptureConfig(max_docs=4, sites="resid_pre,resid_post"), progress=False)
    pre = capture(model, corpus, CaptureConfig(max_docs=4, sites="resid_pre"), progress=False)
    for L in (1, 2):
        assert both.acts[f"blocks.{L}.hook_resid_pre"] is both.acts[f"blocks.{L - 1}.hook_resid_post"]
        assert torch.equal(both.acts[f"blocks.{L}.hook_resid_pre"], pre.acts[f"blocks.{L}.hook_resid_pre"])
    held = sum(t.numel() * t.element_size() for t in {id(t): t for t in both.acts.values()}.values())
    n = both.meta["n_rows"]
    assert held == planned_bytes({"resid_pre": (32,), "resid_post": (32,)}, n, 0, 48, 4, 3, 4, n_shared=2)
    assert held == planned_bytes({"resid_pre": (32,), "resid_post": (32,)}, n, 0, 48, 4, 3, 4) - 2 * n * 32 * 4
    save_activations(both, tmp_path / "acts")
    back = load_activations(tmp_path / "acts")
    assert back.acts.keys() == both.acts.keys()
    for name, t in both.acts.items():
        assert torch.equal(back.acts[name], t), name


@pytest.mark.parametrize("settings, msg", [
    (dict(layers="0,7"), "layer 7 does not exist"),
    (dict(sites="resid_pre,mlp_out"), "unknown site"),
    (dict(split="test"), "no split"),
    (dict(dtype="int8"), "dtype"),
    (dict(store_dtype="bfloat16"), "store_dtype"),
    (dict(device="tpu"), "device"),
    (dict(layers="0,x"), "expected a comma list"),
])
def test_bad_capture_settings(corpus, settings, msg):
    """Each bad setting is one UserError, from the config itself or, for what needs the model or corpus, from
    the capture."""
    with pytest.raises(UserError, match=msg):
        capture(gpt2(corpus, n_layer=1), corpus, CaptureConfig(**settings), progress=False)


def test_cli_capture_control_refusal_and_tokenizer_mismatch(corpus, corpus_dir, tmp_path, cli):
    from test_arch import tiny_tokenizer

    model = gpt2(corpus, n_layer=1, seed=1)  # the control is drawn with seed 0: a different model
    model.save_pretrained(tmp_path / "model")
    corpus.tokenizer.save_pretrained(tmp_path / "model")
    out = tmp_path / "capture"
    rc, stdout, err = cli("capture", "--model", tmp_path / "model", "--corpus", corpus_dir, "--out", out,
                          "--control", "--max-docs", "3", "--sites", "resid_post")
    assert rc == 0, err
    a, ctl = load_activations(out), load_activations(out / "control")
    assert not a.meta["model"]["control"] and ctl.meta["model"]["control"]
    assert not torch.equal(a.acts["blocks.0.hook_resid_post"], ctl.acts["blocks.0.hook_resid_post"])
    rc, _, err = cli("capture", "--model", tmp_path / "model", "--corpus", corpus_dir, "--out", out)
    assert rc == 2 and "--force" in err
    tiny_tokenizer(len(corpus.token_lengths) + 2).save_pretrained(tmp_path / "model")
    rc, _, err = cli("capture", "--model", tmp_path / "model", "--corpus", corpus_dir, "--out", tmp_path / "x")
    assert rc == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("linebreak capture: error: the model's tokenizer does not match")


def test_control_is_the_studys_construction(corpus, tmp_path):
    """A linebreak-trained model's control is build_model of its config (the weights training started from);
    another model's is torch.manual_seed(0) + from_config with eager attention. The study and
    `capture --control` both build it here."""
    import dataclasses

    from test_arch import tiny_model
    from transformers import AutoModelForCausalLM

    from linebreak.capture.control import control_model, save_control_model, trained_config
    from linebreak.io import save_json
    from linebreak.train.model import ModelConfig, build_model

    cfg = ModelConfig(arch="gpt2", n_layer=1, d_model=32, n_head=4, d_mlp=64, n_ctx=64, init_seed=3)
    vocab = len(corpus.token_lengths)
    model = build_model(cfg, vocab, corpus.bos_id)
    with torch.no_grad():  # "trained": the weights moved away from their initialisation
        for p in model.parameters():
            p.add_(0.5)
    save_json(tmp_path / "m" / "train_config.json", {"model": dataclasses.asdict(cfg), "optim": {}})
    assert trained_config(tmp_path / "m") == cfg and trained_config(tmp_path) is None
    ctrl = control_model(model, corpus, trained_config(tmp_path / "m"))
    fresh = build_model(cfg, vocab, corpus.bos_id).state_dict()
    assert not ctrl.training and all(torch.equal(v, fresh[k]) for k, v in ctrl.state_dict().items())
    other = control_model(model, corpus, cfg, seed=4).state_dict()
    assert not torch.equal(other["transformer.h.0.attn.c_attn.weight"], fresh["transformer.h.0.attn.c_attn.weight"])
    with pytest.raises(UserError, match="does not describe the model"):
        control_model(model, corpus, dataclasses.replace(cfg, d_model=64))

    external = tiny_model("llama")
    torch.manual_seed(0)
    expected = AutoModelForCausalLM.from_config(external.config, attn_implementation="eager").state_dict()
    torch.manual_seed(123)  # the control sets its own seed
    ctrl = control_model(external, corpus)
    assert ctrl.config._attn_implementation == "eager"
    assert all(torch.equal(v, expected[k]) for k, v in ctrl.state_dict().items())
    # saved with the corpus tokenizer, it loads back as the same model
    path = save_control_model(model, corpus, tmp_path / "ctrl", cfg)
    loaded, tok = load.load_model(path)
    assert tok.get_vocab() == corpus.tokenizer.get_vocab()
    assert all(torch.equal(v, fresh[k]) for k, v in loaded.state_dict().items())


def test_memory_bound_is_the_store_itself_and_refused_before_the_model_runs(corpus):
    """``planned_bytes`` is exactly what the capture allocates, and a capture over ``max_gb`` is refused
    before any forward pass (with what to cut)."""
    from linebreak.capture.collect import planned_bytes

    model = gpt2(corpus, n_layer=2)
    cfg = CaptureConfig(max_docs=4, sites="resid_post,q,pattern", layers="1", pattern_docs=2, store_dtype="float16")
    a = capture(model, corpus, cfg, progress=False)
    held = sum(t.numel() * t.element_size() for t in a.acts.values())
    assert held == planned_bytes({"resid_post": (32,), "q": (4, 8)}, a.meta["n_rows"], 2, 48, 4, 1, 2)
    calls = []
    model.register_forward_pre_hook(lambda m, args: calls.append(1))
    with pytest.raises(UserError, match="over --max-gb .*--layers"):
        capture(model, corpus, CaptureConfig(max_docs=4, max_gb=held / 2e9), progress=False)
    assert not calls
