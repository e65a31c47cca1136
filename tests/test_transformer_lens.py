"""linebreak's hook names mean what TransformerLens means by them: on the same model and tokens, every name
both tools read holds the same tensor.

TransformerLens 4's ``TransformerBridge`` wraps a Hugging Face model without converting its weights, so its
``run_with_cache`` and linebreak's :func:`linebreak.hooks.run.run_with_cache` see one computation. For each
family a tiny randomly initialised model is built from its config class (no download); every hook point
linebreak declares that exists on that model is read by both tools and compared, in float64 so that the
only differences left are the roundings of a value TL recomputes its own way. Skipped where the
``transformer_lens`` package is not installed (it is not a dependency of linebreak).

Where TransformerLens 4.3 lays out a tensor differently from its own ``hook_q`` (``hook_q_normed`` is
``[batch, head, pos, d_head]`` for per-head norms and flat ``[batch, pos, heads * d_head]`` for OLMo-2's
whole-projection norm), the comparison brings TL's layout to linebreak's ``[batch, pos, head, d_head]`` first:
the values must agree, and :mod:`linebreak.hooks.points` says which layout linebreak keeps.
"""

from __future__ import annotations

import copy

import pytest
import torch

tl_bridge = pytest.importorskip("transformer_lens.model_bridge", reason="transformer_lens is not installed")

from linebreak.hooks.points import POINTS, hook_name  # noqa: E402
from linebreak.hooks.run import run_with_cache  # noqa: E402

VOCAB = 64
EPS32 = float(torch.finfo(torch.float32).eps)
# what each family must let both tools read at every layer (parallel NeoX blocks have no resid_mid; OLMo-2 has no
# norm before attention, so no ln1)
CORE = {"resid_pre", "resid_post", "q", "k", "z", "pattern"}


def family_config(family: str):
    import transformers as tf

    common = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, max_position_embeddings=64)
    gqa = dict(common, num_key_value_heads=2, head_dim=8)
    return {
        "gpt2": lambda: tf.GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64),
        "llama": lambda: tf.LlamaConfig(**gqa),
        "neox": lambda: tf.GPTNeoXConfig(**common, use_parallel_residual=False),
        "neox_parallel": lambda: tf.GPTNeoXConfig(**common, use_parallel_residual=True),
        "qwen2": lambda: tf.Qwen2Config(**gqa),
        "qwen3": lambda: tf.Qwen3Config(**gqa),
        "gemma2": lambda: tf.Gemma2Config(**gqa),
        "gemma3": lambda: tf.Gemma3TextConfig(**gqa),
        "olmo2": lambda: tf.Olmo2Config(**gqa),
    }[family]()


def tiny_pair(family: str, tmp_path):
    """The same tiny model twice (linebreak reads one, the bridge wraps a copy) and a saved folder the bridge
    reads its config and tokenizer from."""
    from tokenizers import Tokenizer, models
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(family_config(family), attn_implementation="eager").double().eval()
    with torch.no_grad():  # norms and biases away from their initial values, so a missed weight shows
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.3 * torch.randn_like(p))
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(
        {f"w{i}": i for i in range(VOCAB)}, unk_token="w0")))
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    bridge = tl_bridge.TransformerBridge.boot_transformers(str(tmp_path), hf_model=copy.deepcopy(model),
                                                           tokenizer=tok, device="cpu", dtype=torch.float64)
    return model, bridge


def readable_points(model) -> dict[str, str]:
    """``{TL name: site}`` of every point linebreak can read on ``model`` at every layer (a point the model does
    not have is refused when attached, e.g. resid_mid in a parallel block)."""
    from linebreak.hooks.attach import attach

    names = {}
    for site in POINTS:
        for L in range(model.config.num_hidden_layers):
            try:
                for h in attach(model, hook_name(site, L), lambda x, n: None):
                    h.remove()
            except Exception:  # the point does not exist on this architecture
                continue
            names[hook_name(site, L)] = site
    return names


def to_linebreak_layout(tl: torch.Tensor, ours: torch.Tensor) -> torch.Tensor:
    """TL's tensor in linebreak's layout where the two differ only by a head/pos transpose or a flat head axis."""
    if tl.shape == ours.shape:
        return tl
    if tl.dim() == 4 and tl.transpose(1, 2).shape == ours.shape:
        return tl.transpose(1, 2)
    if tl.dim() == 3 and ours.dim() == 4 and tl.shape[-1] == ours.shape[-2] * ours.shape[-1]:
        return tl.unflatten(-1, ours.shape[-2:])
    return tl


FAMILIES = ["gpt2", "llama", "neox", "neox_parallel", "qwen2", "qwen3", "gemma2", "gemma3", "olmo2"]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_shared_name_holds_the_same_tensor(family, tmp_path):
    from linebreak.hooks.arch import ARCHES

    if family_config(family).model_type not in ARCHES:
        pytest.skip(f"linebreak does not read {family} yet")
    model, bridge = tiny_pair(family, tmp_path)
    ids = torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(1))
    points = readable_points(model)
    _, ours = run_with_cache(model, ids, list(points), output_attentions=True)
    with torch.no_grad():
        _, theirs = bridge.run_with_cache(ids)
    shared = sorted(n for n in points if n in theirs)
    sites = {points[n] for n in shared}
    assert CORE <= sites, f"names linebreak and TransformerLens do not both read: {sorted(CORE - sites)}"
    for name in shared:
        a = ours[name].double()
        b = to_linebreak_layout(theirs[name].detach(), ours[name]).double()
        assert a.shape == b.shape, f"{name}: linebreak {tuple(a.shape)}, TransformerLens {tuple(b.shape)}"
        # Both run the model in float64, but not every step stays there: linebreak keeps activations in float32
        # (one rounding, relative error <= eps32 / 2), and some Hugging Face models take a step in float32
        # whatever their dtype (NeoX's softmax, whose rounding then reaches hook_z as a weighted mean of values).
        # Each such step moves an element by a few float32 roundings of the largest value it is made from;
        # 64 eps32 of the tensor's largest value (7.6e-6 of it) bounds that with room. A different tensor (a
        # missed weight, another layout, before instead of after a norm) differs by O(1) of it.
        tol = 64 * EPS32 * b.abs().max() + 1e-12
        bad = (a - b).abs() > tol
        assert not bad.any(), f"{name}: max |diff| {(a - b).abs().max():.3g} (values up to {a.abs().max():.3g})"
