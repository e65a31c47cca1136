"""``ModelConfig(arch="gemma2", attn_softcap=c)``: a trainable model whose attention logits are bounded, the lever
that tests the premise of issue 19's argument (a peaked match needs Fourier features *at bounded norm*).

The property that makes it a bound: every attention logit lies in (-c, c), so within one query's row no two
attention probabilities differ by more than a factor ``exp(2c)``, however large the raw scores grow. Without
the cap the same weights exceed that bound by far."""

import math

import pytest
import torch

from linebreak.io import UserError
from linebreak.train.model import ModelConfig, build_model

VOCAB, T = 40, 24


def loud(cap: float):
    """A tiny gemma2 model (cap ``c``, 0: none) with its query and key weights scaled up, so that the raw
    scores reach tens of nats, far beyond the caps tested."""
    cfg = ModelConfig(arch="gemma2", pos="rotary", n_layer=2, d_model=32, n_head=4, d_mlp=64, n_ctx=T,
                      attn_softcap=cap)
    model = build_model(cfg, VOCAB, 0).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.q_proj.weight.mul_(30.0)
            layer.self_attn.k_proj.weight.mul_(30.0)
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


@pytest.mark.parametrize("cap", [1.0, 3.0])
def test_the_cap_bounds_every_attention_row(cap):
    # float32 softmax of logits in (-c, c): the ratio is exp(2c) up to a few float32 roundings of exp
    model = loud(cap)
    assert model.config.attn_logit_softcapping == cap and model.config.final_logit_softcapping is None
    assert row_ratio(model) <= math.exp(2 * cap) * (1 + 1e-5)


def test_without_the_cap_the_same_weights_break_the_bound():
    model = loud(0.0)
    assert model.config.attn_logit_softcapping is None
    assert row_ratio(model) > math.exp(2 * 3.0) * 100


def test_a_trained_capped_model_loads_with_its_cap(tmp_path):
    """Trained, saved and loaded by the stages' loader: the hooks read it as the gemma2 family with its cap."""
    import dataclasses

    from linebreak.corpus.store import generate_corpus, load_corpus
    from linebreak.hooks import arch
    from linebreak.hooks.load import load_model
    from linebreak.presets import TRAIN
    from linebreak.train.loop import train

    p = TRAIN["table-tiny"]
    model_cfg = dataclasses.replace(p.train.model, arch="gemma2", attn_softcap=5.0)
    cfg = dataclasses.replace(p.train, model=model_cfg, optim=dataclasses.replace(p.train.optim, steps=20,
                                                                                  eval_every=20))
    corpus = load_corpus(generate_corpus(dataclasses.replace(p.data, n_train=40), tmp_path / "c"))
    train(cfg, corpus, tmp_path / "m")
    model, _ = load_model(tmp_path / "m")
    assert arch.family(model).name == "gemma2" and arch.softcap(model, 1) == 5.0


@pytest.mark.parametrize("kw,msg", [({"arch": "llama", "attn_softcap": 5.0}, "gemma2 setting"),
                                    ({"arch": "gemma2", "pos": "rotary", "attn_softcap": -1.0}, ">= 0"),
                                    ({"arch": "gemma2", "pos": "rotary", "attn_softcap": float("inf")}, ">= 0")])
def test_bad_cap_is_one_line(kw, msg):
    with pytest.raises(UserError, match=msg):
        ModelConfig(**kw)
