"""Model-agnostic access to the parts of a Hugging Face causal LM that the analyses read.

Every later stage (capture, QK, causal) needs the same few things from a model: its residual blocks, the
norm that attention reads through, the attention module, and per-head query/key weights in TransformerLens
layout (``W_Q [n_heads, d_model, d_head]``, ``q = x @ W_Q[h] + b_Q[h]``). Transformers stores these
differently per architecture (GPT-2 fuses Q, K and V into one ``Conv1D`` with weight ``[d_model, 3 d_model]``;
Llama has separate ``nn.Linear`` projections with grouped key/value heads; GPT-NeoX fuses them per head), so
this module hides that once.

Rotary models (Llama, NeoX): the ``W_Q``/``W_K`` returned here, like TransformerLens' ``hook_q``/``hook_k``,
are *before* the rotary position embedding is applied. Their bilinear form ``W_Q W_K^T`` is the QK circuit
for a query and key at the same position; at other offsets the rotation enters between them:
``score(t, s) = (R_t q) . (R_s k) = (R_{t-s} q) . k``, which :func:`rotate_by_offset` computes.
"""

from __future__ import annotations

from dataclasses import dataclass

from linebreak.io import UserError

# model_type (from config.json) -> the architecture family this module knows how to read.
ARCHES = {"gpt2": "gpt2", "llama": "llama", "mistral": "llama", "qwen2": "llama", "gpt_neox": "neox"}


@dataclass(frozen=True)
class Layout:
    """The shapes that matter for analysis. ``n_kv_heads < n_heads`` means grouped-query attention."""

    arch: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_model: int
    d_head: int


def arch_of(model) -> str:
    """``"gpt2"``, ``"llama"`` or ``"neox"``; a :class:`UserError` for anything else."""
    mt = getattr(model.config, "model_type", None)
    if mt not in ARCHES:
        raise UserError(f"unsupported model type {mt!r}; supported: {', '.join(sorted(ARCHES))}")
    return ARCHES[mt]


def layout(model) -> Layout:
    c = model.config
    arch = arch_of(model)
    n_heads = c.num_attention_heads
    d_head = getattr(c, "head_dim", None) or c.hidden_size // n_heads
    n_kv = getattr(c, "num_key_value_heads", None) or n_heads
    return Layout(arch, c.num_hidden_layers, n_heads, n_kv, c.hidden_size, d_head)


def blocks(model) -> list:
    """The residual blocks, in order (block ``L`` reads ``blocks.{L}.hook_resid_pre``)."""
    base = model.base_model
    return list(base.h if arch_of(model) == "gpt2" else base.layers)


def check_layer(model, layer: int) -> int:
    n = model.config.num_hidden_layers
    if not 0 <= layer < n:
        raise UserError(f"layer {layer} does not exist; the model has layers 0..{n - 1}")
    return layer


def attn_norm(model, layer: int):
    """The norm whose output attention reads (TL ``blocks.{L}.ln1``)."""
    b = blocks(model)[check_layer(model, layer)]
    return b.ln_1 if arch_of(model) == "gpt2" else b.input_layernorm


def mlp_norm(model, layer: int):
    """The norm whose output the MLP reads (TL ``blocks.{L}.ln2``). Its *input* is ``hook_resid_mid``,
    except in a parallel-residual NeoX block, where attention and MLP both read ``hook_resid_pre``."""
    b = blocks(model)[check_layer(model, layer)]
    return b.ln_2 if arch_of(model) == "gpt2" else b.post_attention_layernorm


def parallel_residual(model) -> bool:
    """True when attention and MLP both read the block input (GPT-NeoX default): no ``hook_resid_mid``."""
    return arch_of(model) == "neox" and bool(getattr(model.config, "use_parallel_residual", False))


def attention(model, layer: int):
    b = blocks(model)[check_layer(model, layer)]
    return b.attn if arch_of(model) == "gpt2" else (b.self_attn if arch_of(model) == "llama" else b.attention)


def out_proj(model, layer: int):
    """The attention output projection of ``layer`` (``c_proj`` / ``o_proj`` / ``dense``); its input is TL
    ``blocks.{L}.attn.hook_z`` flattened to ``[..., n_heads * d_head]``."""
    att = attention(model, layer)
    for name in ("c_proj", "o_proj", "dense"):
        if hasattr(att, name):
            return getattr(att, name)
    raise AttributeError(f"no output projection found in {type(att).__name__}")


def qk_sources(model, layer: int) -> list:
    """Where the queries and keys of ``layer`` can be read during a forward pass.

    A list of ``(module, extract)``: ``extract(module_output)`` returns a dict with ``"q"`` and/or ``"k"``,
    each ``[..., n_heads, d_head]`` (pre-rotary; grouped key heads repeated per query head). GPT-2 and NeoX
    fuse Q/K/V into one projection, so one module yields both; Llama has separate ``q_proj`` and ``k_proj``.
    """
    lay, att = layout(model), attention(model, layer)
    H, dh = lay.n_heads, lay.d_head
    if lay.arch == "gpt2":
        def qkv(out):
            q, k, _ = out.split(H * dh, dim=-1)
            return {"q": q.unflatten(-1, (H, dh)), "k": k.unflatten(-1, (H, dh))}
        return [(att.c_attn, qkv)]
    if lay.arch == "neox":
        def qkv_per_head(out):
            q, k, _ = out.unflatten(-1, (H, 3 * dh)).chunk(3, dim=-1)
            return {"q": q, "k": k}
        return [(att.query_key_value, qkv_per_head)]
    rep, Hkv = H // lay.n_kv_heads, lay.n_kv_heads
    return [(att.q_proj, lambda out: {"q": out.unflatten(-1, (H, dh))}),
            (att.k_proj, lambda out: {"k": out.unflatten(-1, (Hkv, dh)).repeat_interleave(rep, -2)})]


def key_slice(model, layer: int, head: int):
    """The module whose output holds ``layer``'s keys (before any rotary) and the slice of its last axis that is
    ``head``'s key, for writing (:func:`qk_sources` reads them). A grouped-query head shares the key of its
    key/value group (HF ``repeat_kv`` order)."""
    lay, att = layout(model), attention(model, layer)
    H, dh = lay.n_heads, lay.d_head
    if lay.arch == "gpt2":  # c_attn output: [q heads | k heads | v heads]
        return att.c_attn, slice(H * dh + head * dh, H * dh + (head + 1) * dh)
    if lay.arch == "neox":  # query_key_value output viewed as [H, (q | k | v), d_head]
        return att.query_key_value, slice((3 * head + 1) * dh, (3 * head + 2) * dh)
    g = head // (H // lay.n_kv_heads)
    return att.k_proj, slice(g * dh, (g + 1) * dh)


def qk_weights(model, layer: int):
    """Per-head query and key maps of ``layer`` in TransformerLens layout.

    Returns ``(W_Q [H, d_model, d_head], b_Q [H, d_head], W_K [H, d_model, d_head], b_K [H, d_head])`` as
    float32 tensors detached from the model, so ``q[h] = ln1(x) @ W_Q[h] + b_Q[h]``. Grouped key/value heads
    are repeated per query head (HF ``repeat_kv`` order); missing biases are zeros; rotary is not applied.
    """
    import torch

    lay, att = layout(model), attention(model, layer)
    H, Hkv, d, dh = lay.n_heads, lay.n_kv_heads, lay.d_model, lay.d_head
    with torch.no_grad():
        if lay.arch == "gpt2":  # Conv1D: out = x @ W + b, W [d_model, 3 H dh]
            W, b = att.c_attn.weight.float(), att.c_attn.bias.float()
            W_Q = W[:, : H * dh].reshape(d, H, dh).permute(1, 0, 2)
            W_K = W[:, H * dh: 2 * H * dh].reshape(d, H, dh).permute(1, 0, 2)
            b_Q, b_K = b[: H * dh].reshape(H, dh), b[H * dh: 2 * H * dh].reshape(H, dh)
        elif lay.arch == "neox":  # Linear: out = x @ W.T + b, out viewed as [H, (q|k|v) dh]
            lin = att.query_key_value
            W = lin.weight.float().reshape(H, 3, dh, d)
            W_Q, W_K = W[:, 0].transpose(1, 2), W[:, 1].transpose(1, 2)
            b = lin.bias.float().reshape(H, 3, dh) if lin.bias is not None else torch.zeros(H, 3, dh)
            b_Q, b_K = b[:, 0], b[:, 1]
        else:
            W_Q = att.q_proj.weight.float().reshape(H, dh, d).transpose(1, 2)
            W_K = att.k_proj.weight.float().reshape(Hkv, dh, d).transpose(1, 2).repeat_interleave(H // Hkv, 0)
            qb, kb = att.q_proj.bias, att.k_proj.bias
            b_Q = qb.float().reshape(H, dh) if qb is not None else torch.zeros(H, dh)
            b_K = (kb.float().reshape(Hkv, dh).repeat_interleave(H // Hkv, 0) if kb is not None
                   else torch.zeros(H, dh))
    return tuple(t.detach().clone().contiguous() for t in (W_Q, b_Q, W_K, b_K))


def is_rotary(model) -> bool:
    """Whether the model's attention rotates queries and keys by position (Llama, NeoX)."""
    return arch_of(model) in ("llama", "neox")


def rotary_tables(model, max_offset: int):
    """The model's own rotary ``cos, sin`` tables for offsets ``0..max_offset`` (``[max_offset + 1, r]``,
    float64 numpy; ``r`` <= d_head is the rotated part, the rest passes unrotated, as in NeoX)."""
    import torch

    emb = model.base_model.rotary_emb
    dh = layout(model).d_head
    pos = torch.arange(max_offset + 1)[None]
    with torch.no_grad():
        cos, sin = emb(torch.zeros(1, max_offset + 1, dh), pos)
    return cos[0].double().numpy(), sin[0].double().numpy()


def rotate_by_offset(q, offset, tables):
    """``R_offset q``: queries ``q [N, d_head]`` rotated by their offsets ``[N]`` to their keys, so that
    ``rotate_by_offset(q, t - s) @ k`` is the attention score (before scaling) of the query at ``t`` on the
    key at ``s``, both taken before rotary (HF's ``rotate_half`` convention: the rotated part is split in
    halves ``(x1, x2) -> x cos + (-x2, x1) sin``)."""
    import numpy as np

    cos, sin = tables
    cos, sin = cos[offset], sin[offset]
    r = cos.shape[-1]
    x, rest = q[:, :r], q[:, r:]
    half = np.concatenate([-x[:, r // 2:], x[:, : r // 2]], axis=1)
    return np.concatenate([x * cos + half * sin, rest], axis=1)
