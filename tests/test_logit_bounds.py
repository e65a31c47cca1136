"""The two bounds on attention that test the premise of issue 19's argument (a peaked match needs Fourier features
*at bounded norm*): ``ModelConfig(arch="gemma2", attn_softcap=c)``, which caps each logit at ``c tanh(s / c)``, and
``ModelConfig(arch="qwen3", qk_logit_bound=c)``, which fixes the q/k norms' gains so that each score is
``c cos(q, k)``.

The property that makes either a bound: every attention logit lies in [-c, c], so within one query's row no two
attention probabilities differ by more than a factor ``exp(2c)``, however large the trainable query and key
weights grow. Without the bound the same weights exceed it by far."""

import math

import pytest
import torch

from linebreak.io import UserError
from linebreak.train.model import ModelConfig, build_model

VOCAB, T = 40, 24
BOUNDED = {"gemma2": "attn_softcap", "qwen3": "qk_logit_bound"}


def loud(arch: str, bound: float):
    """A tiny ``arch`` model with its bound at ``bound`` (0: none) and every trainable query and key parameter
    (projections, and Qwen3's q/k norm gains where they are learned) scaled by 30, so that the raw scores reach
    tens of nats, far beyond the bounds tested."""
    cfg = ModelConfig(arch=arch, pos="rotary", n_layer=2, d_model=32, n_head=4, d_mlp=64, n_ctx=T,
                      **{BOUNDED[arch]: bound})
    model = build_model(cfg, VOCAB, 0).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            for name, p in layer.self_attn.named_parameters():
                if p.requires_grad and name.split(".")[0] in ("q_proj", "k_proj", "q_norm", "k_norm"):
                    p.mul_(30.0)
    return model


def row_ratio(model) -> float:
    """The largest ratio of two attention probabilities in one query row (over the keys it can see)."""
    x = torch.randint(1, VOCAB, (4, T), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        att = model(input_ids=x, output_attentions=True).attentions
    seen = torch.tril(torch.ones(T, T, dtype=torch.bool))
    worst = 0.0
    for a in att:
        a = a.double()
        hi = a.masked_fill(~seen, 0).amax(-1)
        lo = a.masked_fill(~seen, float("inf")).amin(-1)
        worst = max(worst, float((hi / lo).max()))
    return worst


@pytest.mark.parametrize("arch", sorted(BOUNDED))
@pytest.mark.parametrize("bound", [1.0, 3.0])
def test_the_bound_holds_on_every_attention_row(arch, bound):
    # float32 logits in [-c, c] (a cosine or a tanh, each within a float32 rounding of its range) through a float32
    # softmax: the ratio is exp(2c) up to a few float32 roundings of exp
    model = loud(arch, bound)
    if arch == "gemma2":
        assert model.config.attn_logit_softcapping == bound and model.config.final_logit_softcapping is None
    assert row_ratio(model) <= math.exp(2 * bound) * (1 + 1e-5)


@pytest.mark.parametrize("arch", sorted(BOUNDED))
def test_without_the_bound_the_same_weights_break_it(arch):
    model = loud(arch, 0.0)
    if arch == "gemma2":
        assert model.config.attn_logit_softcapping is None
    assert row_ratio(model) > math.exp(2 * 3.0) * 100


@pytest.mark.parametrize("arch,bound", [("gemma2", 3.0), ("qwen3", 3.0), ("qwen3", 0.0)])
def test_score_bound_reads_the_bound_each_model_obeys(arch, bound):
    """``arch.score_bound`` from the weights alone: the cap, the fixed bound ``B`` (to a float32 rounding of the
    gain, squared), or on learned gains (scaled by 30 here) a bound the attention rows still obey."""
    from linebreak.hooks.arch import score_bound

    model = loud(arch, bound)
    bounds = [score_bound(model, L) for L in range(2)]
    if bound:
        assert bounds == pytest.approx([bound] * 2, rel=1e-6)
        assert row_ratio(model) <= math.exp(2 * bound) * (1 + 1e-5)
    else:  # learned gains, 1 at init, now 30: 30 * 30 * d_head / sqrt(d_head), past what float32 attention resolves
        assert bounds == pytest.approx([900 * 8 ** 0.5] * 2, rel=1e-6)


def test_an_unbounded_model_has_no_score_bound():
    from linebreak.hooks.arch import score_bound

    model = build_model(ModelConfig(arch="llama", pos="rotary", n_layer=1, d_model=32, n_head=4, d_mlp=64, n_ctx=T),
                        VOCAB, 0)
    assert score_bound(model, 0) is None


def train_tiny(tmp_path, **model_kw):
    import dataclasses

    from linebreak.corpus.store import generate_corpus, load_corpus
    from linebreak.hooks.load import load_model
    from linebreak.presets import TRAIN
    from linebreak.train.loop import train

    p = TRAIN["table-tiny"]
    cfg = dataclasses.replace(p.train, model=dataclasses.replace(p.train.model, **model_kw),
                              optim=dataclasses.replace(p.train.optim, steps=20, eval_every=20))
    corpus = load_corpus(generate_corpus(dataclasses.replace(p.data, n_train=40), tmp_path / "c"))
    train(cfg, corpus, tmp_path / "m")
    return load_model(tmp_path / "m")[0], cfg.model


def test_a_trained_capped_model_loads_with_its_cap(tmp_path):
    """Trained, saved and loaded by the stages' loader: the hooks read it as the gemma2 family with its cap."""
    from linebreak.hooks import arch

    model, _ = train_tiny(tmp_path, arch="gemma2", attn_softcap=5.0)
    assert arch.family(model).name == "gemma2" and arch.softcap(model, 1) == 5.0


def test_a_trained_bounded_model_keeps_its_fixed_gains(tmp_path):
    """Twenty AdamW steps (weight decay 0.01 on matrices) leave every q/k norm gain at exactly (c / sqrt(d_head))^0.5,
    while the projections move from their initial weights (the same config and init seed, built afresh); loaded
    back, the hooks read it as the qwen3 family, a model with q/k norms."""
    from linebreak.hooks import arch

    model, cfg = train_tiny(tmp_path, arch="qwen3", qk_logit_bound=4.0)
    assert arch.family(model).name == "qwen3" and arch.has_qk_norm(model)
    d_head = model.config.head_dim
    fresh = build_model(cfg, model.config.vocab_size, model.config.bos_token_id)
    for layer, new in zip(model.model.layers, fresh.model.layers):
        a = layer.self_attn
        for norm in (a.q_norm, a.k_norm):
            assert torch.equal(norm.weight, torch.full_like(norm.weight, (4.0 / d_head ** 0.5) ** 0.5))
        assert not torch.equal(a.q_proj.weight, new.self_attn.q_proj.weight)


@pytest.mark.parametrize("kw,msg", [({"arch": "llama", "attn_softcap": 5.0}, "gemma2 setting"),
                                    ({"arch": "gemma2", "pos": "rotary", "attn_softcap": -1.0}, ">= 0"),
                                    ({"arch": "gemma2", "pos": "rotary", "attn_softcap": float("inf")}, ">= 0"),
                                    ({"arch": "llama", "qk_logit_bound": 5.0}, "qwen3 setting"),
                                    ({"arch": "qwen3", "pos": "rotary", "qk_logit_bound": -1.0}, ">= 0"),
                                    ({"arch": "qwen3", "pos": "rotary", "qk_logit_bound": float("nan")}, ">= 0")])
def test_bad_bound_is_one_line(kw, msg):
    with pytest.raises(UserError, match=msg):
        ModelConfig(**kw)
