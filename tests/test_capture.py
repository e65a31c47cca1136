"""Capture on tiny random GPT-2 and Llama models over a tiny corpus: TransformerLens names and shapes, labels
aligned with the corpus, queries/keys equal to W_Q/W_K applied to what attention reads, the residual stream
consistent across hooks, bounded memory, and one-line errors on bad input."""

import numpy as np
import pytest
import torch

from linebreak.capture.activations import CaptureConfig, capture, load_activations, save_activations
from linebreak.hooks import arch
from linebreak.io import UserError


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    from linebreak.corpus.store import CorpusConfig, generate_corpus

    out = tmp_path_factory.mktemp("c") / "corpus"
    generate_corpus(CorpusConfig(widths="12:24", seq_len=48, n_train=8, n_val=12, vocab_size=20,
                                 max_word_len=6), out)
    return out


@pytest.fixture(scope="module")
def corpus(corpus_dir):
    from linebreak.corpus.store import load_corpus

    return load_corpus(corpus_dir)


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
        for site in ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "ln1.hook_normalized"):
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
    torch.testing.assert_close(a.acts["blocks.0.hook_resid_pre"], emb.detach())
    torch.testing.assert_close(a.acts["blocks.0.hook_resid_post"], a.acts["blocks.1.hook_resid_pre"])
    ln = arch.attn_norm(model, 1)
    with torch.no_grad():
        torch.testing.assert_close(a.acts["blocks.1.ln1.hook_normalized"], ln(a.acts["blocks.1.hook_resid_pre"]))
    # q/k are W_Q/W_K projections of what attention reads
    for L in range(2):
        W_Q, b_Q, W_K, b_K = arch.qk_weights(model, L)
        x = a.acts[f"blocks.{L}.ln1.hook_normalized"]
        torch.testing.assert_close(a.acts[f"blocks.{L}.attn.hook_q"], torch.einsum("nd,hde->nhe", x, W_Q) + b_Q,
                                   atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(a.acts[f"blocks.{L}.attn.hook_k"], torch.einsum("nd,hde->nhe", x, W_K) + b_K,
                                   atol=1e-5, rtol=1e-4)
    P = a.acts["blocks.0.attn.hook_pattern"]
    torch.testing.assert_close(P.sum(-1), torch.ones(2, 4, 48))
    assert torch.triu(P, diagonal=1).abs().max() == 0  # causal


def test_llama_gqa_capture(corpus):
    from test_arch import tiny_model

    model = tiny_model("llama", d=32)
    assert arch.layout(model).n_kv_heads == 2
    a = capture(model, corpus, CaptureConfig(max_docs=3, sites="ln1,k,resid_mid", layers="1"), progress=False)
    assert set(a.acts) == {"blocks.1.ln1.hook_normalized", "blocks.1.attn.hook_k", "blocks.1.hook_resid_mid"}
    _, _, W_K, b_K = arch.qk_weights(model, 1)
    k = a.acts["blocks.1.attn.hook_k"]
    assert k.shape == (3 * 48, 4, 8)
    torch.testing.assert_close(k, torch.einsum("nd,hde->nhe", a.acts["blocks.1.ln1.hook_normalized"], W_K) + b_K,
                               atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(k[:, 0], k[:, 1])  # heads 0 and 1 share key head 0


def test_token_cap_dtype_and_round_trip(corpus, tmp_path):
    model = gpt2(corpus, n_layer=1)
    cfg = CaptureConfig(max_docs=10, max_tokens=100, sites="resid_post,pattern", dtype="float16",
                        pattern_docs=1, batch_size=3)
    a = capture(model, corpus, cfg, progress=False)
    b = capture(model, corpus, cfg, progress=False)
    assert a.meta["n_rows"] == 100 and a.acts["blocks.0.hook_resid_post"].dtype == torch.float16
    np.testing.assert_array_equal(a.labels["doc"], b.labels["doc"])  # seeded sample
    save_activations(a, tmp_path / "acts")
    c = load_activations(tmp_path / "acts")
    torch.testing.assert_close(c.acts["blocks.0.hook_resid_post"], a.acts["blocks.0.hook_resid_post"])
    np.testing.assert_array_equal(c.labels["remaining"], a.labels["remaining"])
    assert c.meta["layers"] == [0] and c.layers("resid_post") == [0]


@pytest.mark.parametrize("cfg, msg", [
    (CaptureConfig(layers="0,7"), "layer 7 does not exist"),
    (CaptureConfig(sites="resid_pre,mlp_out"), "unknown site"),
    (CaptureConfig(split="test"), "no split"),
    (CaptureConfig(dtype="int8"), "dtype"),
])
def test_bad_capture_settings(corpus, cfg, msg):
    with pytest.raises(UserError, match=msg):
        capture(gpt2(corpus, n_layer=1), corpus, cfg, progress=False)


def test_cli_capture_control_refusal_and_tokenizer_mismatch(corpus, corpus_dir, tmp_path, cli):
    from test_arch import tiny_tokenizer

    model = gpt2(corpus, n_layer=1, seed=1)  # the control is drawn with seed 0: a different model
    model.save_pretrained(tmp_path / "model")
    corpus.tokenizer.save_pretrained(tmp_path / "model")
    out = tmp_path / "probes" / "run"
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
