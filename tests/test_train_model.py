"""build_model: the architectures and position schemes others build tiny random models with."""

import pytest
import torch

from linebreak.io import UserError
from linebreak.model import ModelConfig, build_model

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
    # so the output does not depend on where a token sits, only on what precedes it
    x = torch.tensor([[5, 5, 5, 5]])
    logits = model(input_ids=x).logits[0]
    assert torch.allclose(logits[0], logits[1], atol=1e-5)


@pytest.mark.parametrize("bad", [dict(arch="bert"), dict(arch="llama", pos="learned"), dict(n_head=3)])
def test_bad_model_settings(bad):
    with pytest.raises(UserError):
        build_model(ModelConfig(**{**SMALL, **bad}), vocab_size=50, bos_id=0)
