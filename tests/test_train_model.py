"""build_model: the architectures and position schemes others build tiny random models with."""

import pytest
import torch

from linebreak.io import UserError
from linebreak.train.model import ModelConfig, build_model

SMALL = dict(n_layer=2, d_model=32, n_head=4, d_mlp=64, n_ctx=16)


@pytest.mark.parametrize("arch, pos", [("gpt2", "learned"), ("gpt2", "none"), ("llama", "rotary"),
                                       ("neox", "rotary")])
def test_build_model_shapes_and_eager_attention(arch, pos):
    model = build_model(ModelConfig(arch=arch, pos=pos, **SMALL), vocab_size=50, bos_id=0)
    assert model.config._attn_implementation == "eager"
    out = model(input_ids=torch.zeros(2, 7, dtype=torch.long), output_attentions=True)
    assert out.logits.shape == (2, 7, 50)
    assert out.attentions[0].shape == (2, 4, 7, 7)
    again = build_model(ModelConfig(arch=arch, pos=pos, **SMALL), vocab_size=50, bos_id=0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_gpt2_without_positions_has_zero_frozen_position_embeddings():
    model = build_model(ModelConfig(pos="none", **SMALL), vocab_size=50, bos_id=0)
    wpe = model.transformer.wpe.weight
    assert not wpe.requires_grad and torch.count_nonzero(wpe) == 0
    # so the output does not depend on where a token sits, only on what precedes it; in float64, so that
    # the two positions' different rounding (~1e-16 relative) cannot reach the tolerance
    x = torch.tensor([[5, 5, 5, 5]])
    logits = model.double()(input_ids=x).logits[0]
    assert torch.allclose(logits[0], logits[1], rtol=0, atol=1e-10)


@pytest.mark.parametrize("bad", [dict(arch="bert"), dict(arch="llama", pos="learned"), dict(n_head=3)])
def test_bad_model_settings(bad):
    with pytest.raises(UserError):
        build_model(ModelConfig(**{**SMALL, **bad}), vocab_size=50, bos_id=0)


@pytest.mark.parametrize("arch, pos", [("gpt2", "learned"), ("llama", "rotary"), ("neox", "rotary")])
def test_resid_noise_is_relative_seeded_and_off_in_eval(arch, pos):
    from linebreak.hooks.arch import blocks
    from linebreak.hooks.interventions import add_resid_noise

    model = build_model(ModelConfig(arch=arch, pos=pos, **SMALL), vocab_size=50, bos_id=0)
    x = torch.randint(0, 50, (8, 16), generator=torch.Generator().manual_seed(0))
    seen = []

    def record(module, args, kwargs):
        seen.append((args[0] if args else kwargs["hidden_states"]).detach().clone())

    block = blocks(model)[1]
    block.register_forward_pre_hook(record, with_kwargs=True)  # hooks run in order: the clean input ...
    gen = torch.Generator()
    add_resid_noise(model, 0.5, gen)
    block.register_forward_pre_hook(record, with_kwargs=True)  # ... then the noisy one
    model.train()
    gen.manual_seed(7)
    noisy = model(input_ids=x).logits
    clean_in, noisy_in = seen[-2:]
    ratio = (noisy_in - clean_in).std(-1) / clean_in.pow(2).mean(-1).sqrt()
    # std 0.5 x each token's RMS: each token's sample std over 32 dimensions is off by ~1/sqrt(64) = 12 %,
    # so the mean over 128 tokens by ~0.006; 0.03 is five of those (and the draw is seeded)
    assert abs(float(ratio.mean()) - 0.5) < 0.03
    gen.manual_seed(7)
    assert torch.equal(model(input_ids=x).logits, noisy)  # the generator alone decides the noise
    assert not torch.allclose(model(input_ids=x).logits, noisy, atol=1e-3)  # a fresh draw differs
    model.eval()
    clean = model(input_ids=x).logits
    assert torch.equal(seen[-2], seen[-1])  # eval mode: no noise
    assert not torch.allclose(clean, noisy, atol=1e-3)


def test_training_with_resid_noise_is_reproducible(tmp_path):
    import dataclasses

    from linebreak.corpus import generate_corpus, load_corpus
    from linebreak.presets import TRAIN as PRESETS
    from linebreak.train.loop import train

    tiny = PRESETS["tiny"]
    corpus = load_corpus(generate_corpus(dataclasses.replace(tiny.data, n_train=64, n_val=8), tmp_path / "c"))
    optim = dataclasses.replace(tiny.train.optim, steps=12, eval_every=6, eval_docs=8)
    runs = {}
    for name, noise in (("a", 0.5), ("b", 0.5), ("clean", 0.0)):
        cfg = dataclasses.replace(tiny.train, optim=dataclasses.replace(optim, resid_noise=noise))
        runs[name] = train(cfg, corpus, tmp_path / name).model.state_dict()
    same = lambda u, v: all(torch.equal(u[k], v[k]) for k in u)  # noqa: E731
    assert same(runs["a"], runs["b"]) and not same(runs["a"], runs["clean"])
    bad = dataclasses.replace(tiny.train, optim=dataclasses.replace(optim, resid_noise=-1.0))
    with pytest.raises(UserError, match="resid_noise"):
        train(bad, corpus, tmp_path / "bad")
