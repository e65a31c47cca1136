"""``--device`` / ``--dtype``: a model runs in bfloat16 or float16 and its activations still reach the statistics
as float32 on the CPU, close to float32's by what the dtype's precision promises; float32 on the CPU is the
default path, bit for bit; a device that is absent, or a dtype it cannot run, is one line and nothing written.

Tiny random models (Llama with grouped-query attention and rotary, GPT-2), built from their config classes and
saved as a model folder is: nothing is downloaded. This machine has no GPU, so the CUDA path is tested as an
absent device.
"""

import numpy as np
import pytest
import torch

from linebreak.capture.collect import capture
from linebreak.capture.config import CaptureConfig
from linebreak.capture.store import load_activations
from linebreak.hooks import load
from linebreak.hooks.run import run_with_cache
from linebreak.io import UserError

N_LAYER, D = 3, 64
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="tests the absent-device message")




@pytest.fixture(scope="module")
def model_dir(corpus, tmp_path_factory):
    """A tiny random Llama (rotary, grouped keys) on the corpus' vocabulary, saved with the corpus tokenizer."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(corpus.token_lengths), hidden_size=D, intermediate_size=2 * D,
                      num_hidden_layers=N_LAYER, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=64)
    path = tmp_path_factory.mktemp("dev") / "model"
    AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").save_pretrained(path)
    corpus.tokenizer.save_pretrained(path)
    return path


SITES = "resid_pre,resid_mid,resid_post,ln1,q,k"


def _capture(model_dir, corpus, dtype):
    model, _ = load.load_model(model_dir, "cpu", dtype)
    assert next(model.parameters()).dtype == getattr(torch, dtype)
    return capture(model, corpus, CaptureConfig(max_docs=6, sites=SITES, dtype=dtype), progress=False)


def test_low_precision_capture_is_float32_and_close_to_float32(model_dir, corpus):
    """bfloat16 keeps 8 significant bits (unit roundoff u = 2^-8), float16 11 (u = 2^-11). Each block rounds its
    input at about ten points (two norms, q/k/v/o, gate/up/down, the softmax, the residual adds), each by a
    relative u at most, and carries the error of the blocks before it; to first order the relative error of a
    site in block L is at most 10 u (L + 1). The measured error must also be present (the model really ran in
    the dtype) and bfloat16's must exceed float16's (3 bits fewer)."""
    ref = _capture(model_dir, corpus, "float32")
    err = {}
    for dtype, u in (("bfloat16", 2.0 ** -8), ("float16", 2.0 ** -11)):
        a = _capture(model_dir, corpus, dtype)
        assert a.meta["config"]["dtype"] == dtype and a.meta["config"]["store_dtype"] == "float32"
        worst = 0.0
        for name, x in ref.acts.items():
            assert a.acts[name].dtype == torch.float32 and a.acts[name].device.type == "cpu"
            L = int(name.split(".")[1])
            rel = float((a.acts[name] - x).norm() / x.norm())
            assert rel <= 10 * u * (L + 1), (dtype, name, rel)
            worst = max(worst, rel)
        assert worst > u / 16, (dtype, worst)  # not float32 numbers: the dtype was used
        err[dtype] = worst
    assert err["bfloat16"] > err["float16"]


def test_run_with_cache_hands_over_float32_on_the_cpu(model_dir):
    model, _ = load.load_model(model_dir, "cpu", "bfloat16")
    ids = torch.randint(0, 10, (2, 12))
    logits, cache = run_with_cache(model, ids, ["blocks.0.hook_resid_pre", "blocks.1.attn.hook_pattern"])
    assert logits.dtype == torch.bfloat16  # the logits stay as the model made them
    assert {v.dtype for v in cache.values()} == {torch.float32}
    # eager attention takes the softmax in float32 and rounds each probability once to bfloat16 (relative
    # 2^-9), so a row sums to 1 within 2^-9, plus float32's own summation error
    P = cache["blocks.1.attn.hook_pattern"]
    torch.testing.assert_close(P.sum(-1), torch.ones(P.shape[:-1]), rtol=0, atol=2.0 ** -9 + 16 * 2.0 ** -24)


def test_float32_on_the_cpu_is_the_default_bit_for_bit(model_dir, corpus_dir, tmp_path, cli):
    """Passing --device cpu --dtype float32 changes nothing, and what capture stores is the model's own
    float32 hidden states (output_hidden_states), not a rounded copy."""
    base = ["capture", "--model", model_dir, "--corpus", corpus_dir, "--max-docs", "5", "--sites",
            "resid_pre,ln1,q,pattern"]
    assert cli(*base, "--out", tmp_path / "plain")[0] == 0
    assert cli(*base, "--out", tmp_path / "flags", "--device", "cpu", "--dtype", "float32")[0] == 0
    a, b = load_activations(tmp_path / "plain"), load_activations(tmp_path / "flags")
    assert a.acts.keys() == b.acts.keys() and all(torch.equal(a.acts[k], b.acts[k]) for k in a.acts)
    assert a.meta["model"]["dtype"] == "float32" and a.meta["model"]["device"] == "cpu"
    model, _ = load.load_model(model_dir)
    ids = torch.from_numpy(np.ascontiguousarray(_ids(corpus_dir)[:5]))
    with torch.no_grad():
        hs = model(input_ids=ids, output_hidden_states=True).hidden_states
    for L in range(N_LAYER):
        want = hs[L][torch.from_numpy(a.labels["doc"]), torch.from_numpy(a.labels["pos"])]
        assert torch.equal(a.acts[f"blocks.{L}.hook_resid_pre"], want)


def _ids(corpus_dir):
    from linebreak.corpus.store import load_corpus

    return load_corpus(corpus_dir).splits["validation"].input_ids


def test_the_control_runs_in_the_same_dtype(model_dir, corpus_dir, tmp_path, cli):
    rc, _, err = cli("capture", "--model", model_dir, "--corpus", corpus_dir, "--out", tmp_path / "c",
                     "--control", "--max-docs", "3", "--sites", "resid_post", "--dtype", "bfloat16")
    assert rc == 0, err
    ctl = load_activations(tmp_path / "c" / "control")
    assert ctl.meta["config"]["dtype"] == "bfloat16" and ctl.acts["blocks.0.hook_resid_post"].dtype == torch.float32
    # values a bfloat16 model computed, widened exactly: a bfloat16 is a float32 whose low 16 bits are zero
    low = ctl.acts[f"blocks.{N_LAYER - 1}.hook_resid_post"].view(torch.int32) & 0xFFFF
    assert int(low.count_nonzero()) == 0


@NO_CUDA
@pytest.mark.parametrize("command", ["capture", "qk", "causal"])
def test_absent_cuda_is_one_line_and_nothing_written(command, model_dir, corpus_dir, tmp_path, cli):
    out = tmp_path / "out"
    rc, stdout, err = cli(command, "--model", model_dir, "--corpus", corpus_dir, "--out", out, "--device", "cuda")
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "no CUDA device" in err and not out.exists()


@NO_CUDA
def test_absent_cuda_stops_the_study_before_any_stage(tmp_path, cli):
    rc, _, err = cli("study", "--out", tmp_path / "s", "--preset", "tiny", "--device", "cuda")
    assert rc == 2 and "no CUDA device" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_a_dtype_the_device_cannot_run_is_one_line(model_dir, corpus_dir, tmp_path, cli, monkeypatch):
    """As an older CPU build refuses half precision ("not implemented for 'Half'"): the probe op fails, the
    command says so in one line and writes nothing."""
    real = torch.nn.functional.layer_norm

    def no_half(x, *a, **k):
        if x.dtype == torch.float16:
            raise RuntimeError('"LayerNormKernelImpl" not implemented for \'Half\'\nmore detail')
        return real(x, *a, **k)

    monkeypatch.setattr(torch.nn.functional, "layer_norm", no_half)
    out = tmp_path / "out"
    rc, _, err = cli("capture", "--model", model_dir, "--corpus", corpus_dir, "--out", out, "--dtype", "float16")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and not out.exists()
    assert "--device cpu cannot run --dtype float16" in err
    with pytest.raises(UserError, match="cannot run"):
        load.check_device("cpu", "float16")
    load.check_device("cpu", "bfloat16")  # the others still run


def test_unknown_names_are_refused_by_every_config():
    from linebreak.causal.config import CausalConfig
    from linebreak.qk.config import QKConfig
    from linebreak.study.pipeline import StudyConfig

    for cls in (CaptureConfig, QKConfig, CausalConfig, StudyConfig):
        with pytest.raises(UserError, match="device must be cpu or cuda"):
            cls(device="mps")
        with pytest.raises(UserError, match="dtype must be float32, bfloat16 or float16"):
            cls(dtype="float64")
        assert cls(device="cuda").device == "cuda"  # a name is enough: availability is checked at load


def test_the_study_hands_device_dtype_and_layers_to_its_stages():
    from linebreak.study.pipeline import StudyConfig, resolve

    sp = resolve(StudyConfig(preset="tiny", device="cuda", dtype="bfloat16", layers=(1,)))
    for c in (sp.capture, sp.qk, sp.causal):
        assert (c.device, c.dtype) == ("cuda", "bfloat16")
    assert sp.capture.layers == (1,)
    default = resolve(StudyConfig(preset="tiny"))
    assert (default.capture.device, default.capture.dtype, default.capture.layers) == ("cpu", "float32", ())


def test_qk_and_causal_run_in_bfloat16(model_dir, corpus):
    """The whole qk and causal analyses run on a bfloat16 model (every tensor they turn into numbers reaches
    them as float32), and agree with float32 where rounding cannot matter: which values are kept."""
    import dataclasses

    from linebreak.causal.analysis import causal_checks
    from linebreak.presets import CAUSAL, QK
    from linebreak.qk.analysis import qk_analysis

    res = {}
    for dtype in ("float32", "bfloat16"):
        model, tok = load.load_model(model_dir, "cpu", dtype)
        qk_cfg = dataclasses.replace(QK["tiny"], n_docs=12, dtype=dtype, probes=False)
        q = qk_analysis(model, corpus, qk_cfg, tokenizer=tok)
        c = causal_checks(model, corpus, q, dataclasses.replace(CAUSAL["tiny"], n_docs=12, n_lines=4, dtype=dtype),
                          tokenizer=tok)
        res[dtype] = (q, c)
        assert q.config.dtype == dtype and c.config.dtype == dtype
    (q32, c32), (q16, c16) = res["float32"], res["bfloat16"]
    np.testing.assert_array_equal(q32.i_values, q16.i_values)  # labels, not numbers
    assert np.isfinite(c16.baseline.newline_loss)
    # the loss of a random model is about log(vocab); bfloat16 logits are off by a relative 2^-8 each
    assert abs(c16.baseline.loss - c32.baseline.loss) <= 0.05 * c32.baseline.loss
