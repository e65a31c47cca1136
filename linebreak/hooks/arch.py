"""Model-agnostic access to the parts of a Hugging Face causal LM that the analyses read.

Every later stage (capture, QK, causal) needs the same few things from a model: its residual blocks, the
norm that attention reads through, the attention module, and per-head query/key weights in TransformerLens
layout (``W_Q [n_heads, d_model, d_head]``, ``q = x @ W_Q[h] + b_Q[h]``). Transformers stores these
differently per architecture, so this module hides that once, in one table: :data:`FAMILIES` holds one
:class:`Family` record per architecture family (where its parts are called what, and what sits between
``W_Q`` and the attention score), :data:`ARCHES` maps a config's ``model_type`` to its family.

    family   model_type             what differs
    gpt2     gpt2                   fused Conv1D QKV [q | k | v], LayerNorm, learned positions
    neox     gpt_neox               fused Linear QKV per head [q k v], LayerNorm, partial rotary, parallel blocks
    llama    llama, mistral, qwen2  separate q/k/v projections, grouped key/value heads, RMSNorm, rotary
    gemma    gemma                  as llama; RMSNorm multiplies by (1 + weight), embeddings by sqrt(d_model)
    qwen3    qwen3                  as llama, plus a per-head RMSNorm on queries and keys before rotary
    gemma2   gemma2                 norms after attention and MLP as well as before; query_pre_attn_scalar
                                    scaling; attention-logit soft-capping c tanh(s / c)
    gemma3   gemma3_text            as gemma2 without the soft cap, plus per-head q/k norms and a rotary base
                                    per layer type (sliding / full attention)
    olmo2    olmo2                  post-norm blocks (no norm before attention or MLP); q/k RMSNorms over the
                                    whole projection (all heads at once)

Rotary models: the ``W_Q``/``W_K`` returned here, like TransformerLens' ``hook_q``/``hook_k``, are *before* the
rotary position embedding is applied (and before any q/k norm). Their bilinear form ``W_Q W_K^T`` is the QK
circuit for a query and key at the same position; at other offsets the rotation enters between them:
``score(t, s) = (R_t q) . (R_s k) = (R_{t-s} q) . k``, which :func:`rotate_by_offset` computes. A q/k-norm
model (:func:`has_qk_norm`) scores its *normed* queries and keys (``attn.hook_q_normed`` / ``hook_k_normed``),
and the norm is not linear: no residual direction maps through such a head by a matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from linebreak.io import UserError


@dataclass(frozen=True)
class Family:
    """Where an architecture family keeps the parts the analyses read (attribute names on its HF modules), and
    what it computes between the projections and the attention score."""

    name: str
    blocks: str = "layers"  # attribute of the base model holding the residual blocks
    attention: str = "self_attn"  # attribute of a block holding its attention module
    qkv: str = "separate"  # "gpt2": one Conv1D [q | k | v]; "neox": one Linear, per head [q k v]; "separate"
    ln1: str | None = "input_layernorm"  # the norm attention reads through (TL ln1); None: attention reads
    #                                      the block input (post-norm OLMo-2)
    mid_reader: str = "post_attention_layernorm"  # the module whose first input is hook_resid_mid (TL ln2,
    #                                               or the MLP itself when there is no norm before it)
    attn_out_norm: str | None = None  # a norm on attention's output before the residual add (TL ln1_post)
    layer_norm: bool = False  # LayerNorm (centred, a bias) rather than RMSNorm
    qk_norm: str | None = None  # layout of q_norm / k_norm's output: "heads" [..., pos, head, d_head],
    #                             "heads_first" [..., head, pos, d_head], "flat" [..., pos, head * d_head]
    rotary: bool = True
    rotary_per_layer_type: bool = False  # the rotary embedding takes the layer type (a base per type)
    softcap: bool = False  # attention applies config.attn_logit_softcapping to its logits


_GEMMA2 = dict(mid_reader="pre_feedforward_layernorm", attn_out_norm="post_attention_layernorm")
FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("gpt2", blocks="h", attention="attn", qkv="gpt2", ln1="ln_1", mid_reader="ln_2", layer_norm=True,
           rotary=False),
    Family("neox", attention="attention", qkv="neox", layer_norm=True),
    Family("llama"),
    Family("gemma"),  # the (1 + weight) norm and the embedding scale live inside HF's own modules
    Family("qwen3", qk_norm="heads"),
    Family("gemma2", softcap=True, **_GEMMA2),
    Family("gemma3", qk_norm="heads_first", rotary_per_layer_type=True, **_GEMMA2),
    Family("olmo2", ln1=None, mid_reader="mlp", attn_out_norm="post_attention_layernorm", qk_norm="flat"),
)}

# model_type (from config.json) -> the architecture family this module knows how to read.
ARCHES = {"gpt2": "gpt2", "gpt_neox": "neox", "llama": "llama", "mistral": "llama", "qwen2": "llama",
          "gemma": "gemma", "qwen3": "qwen3", "gemma2": "gemma2", "gemma3_text": "gemma3", "olmo2": "olmo2"}


@dataclass(frozen=True)
class Layout:
    """The shapes that matter for analysis. ``n_kv_heads < n_heads`` means grouped-query attention."""

    arch: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_model: int
    d_head: int


def family(model) -> Family:
    """The model's :class:`Family`; a :class:`UserError` for a model type linebreak does not read."""
    mt = getattr(model.config, "model_type", None)
    if mt not in ARCHES:
        raise UserError(f"unsupported model type {mt!r}; supported: {', '.join(sorted(ARCHES))}")
    return FAMILIES[ARCHES[mt]]


def arch_of(model) -> str:
    """The family's name (``"gpt2"``, ``"llama"``, ``"gemma2"``, ...); a :class:`UserError` for anything else."""
    return family(model).name


def layout(model) -> Layout:
    c = model.config
    arch = arch_of(model)
    n_heads = c.num_attention_heads
    d_head = getattr(c, "head_dim", None) or c.hidden_size // n_heads
    n_kv = getattr(c, "num_key_value_heads", None) or n_heads
    return Layout(arch, c.num_hidden_layers, n_heads, n_kv, c.hidden_size, d_head)


def blocks(model) -> list:
    """The residual blocks, in order (block ``L`` reads ``blocks.{L}.hook_resid_pre``)."""
    return list(getattr(model.base_model, family(model).blocks))


def check_layer(model, layer: int) -> int:
    n = model.config.num_hidden_layers
    if not 0 <= layer < n:
        raise UserError(f"layer {layer} does not exist; the model has layers 0..{n - 1}")
    return layer


def _block(model, layer: int):
    return blocks(model)[check_layer(model, layer)]


def attention_input_site(model) -> str:
    """The hook site whose tensor attention reads: ``"ln1"`` (``blocks.{L}.ln1.hook_out``, the attention norm's
    output), or ``"resid_pre"`` where no norm comes before attention (post-norm OLMo-2). Every analysis that
    reads "what the heads read" (the QK means, capture's and the probes' default sites) takes it from here."""
    return "ln1" if family(model).ln1 else "resid_pre"


def attn_norm(model, layer: int):
    """The norm whose output attention reads (TL ``blocks.{L}.ln1``); a one-line :class:`UserError` on a
    post-norm model, which has none."""
    fam, b = family(model), _block(model, layer)
    if fam.ln1 is None:
        raise UserError(f"blocks.{layer}.ln1: {fam.name} has no norm before attention (post-norm blocks); "
                        f"attention reads blocks.{layer}.hook_resid_pre")
    return getattr(b, fam.ln1)


def resid_mid_reader(model, layer: int):
    """The module whose first input is ``hook_resid_mid``: the MLP's norm (TL ``blocks.{L}.ln2``; Gemma-2/3's
    ``pre_feedforward_layernorm``), or the MLP itself where no norm comes before it (OLMo-2). In a
    parallel-residual NeoX block attention and MLP both read ``hook_resid_pre`` (:func:`parallel_residual`)."""
    return getattr(_block(model, layer), family(model).mid_reader)


def attn_out_norm(model, layer: int):
    """The norm on attention's output before it joins the residual (TL ``blocks.{L}.ln1_post``: Gemma-2/3,
    OLMo-2), or None: ``hook_resid_mid = hook_resid_pre + (that norm of) the attention output``."""
    name = family(model).attn_out_norm
    return getattr(_block(model, layer), name) if name else None


def parallel_residual(model) -> bool:
    """True when attention and MLP both read the block input (GPT-NeoX default): no ``hook_resid_mid``."""
    return arch_of(model) == "neox" and bool(getattr(model.config, "use_parallel_residual", False))


def attention(model, layer: int):
    return getattr(_block(model, layer), family(model).attention)


def out_proj(model, layer: int):
    """The attention output projection of ``layer`` (``c_proj`` / ``o_proj`` / ``dense``); its input is TL
    ``blocks.{L}.attn.hook_z`` flattened to ``[..., n_heads * d_head]``."""
    att = attention(model, layer)
    for name in ("c_proj", "o_proj", "dense"):
        if hasattr(att, name):
            return getattr(att, name)
    raise AttributeError(f"no output projection found in {type(att).__name__}")


# ---- queries and keys ----------------------------------------------------------------------------------------
def has_qk_norm(model) -> bool:
    """Whether the model normalises its queries and keys after the projection (Qwen3, Gemma-3, OLMo-2): then
    ``attn.hook_q_normed`` / ``hook_k_normed`` exist and hold what the attention score is made of."""
    return family(model).qk_norm is not None


@dataclass(frozen=True)
class Source:
    """Where one of a layer's per-head tensors (queries or keys, before or after the q/k norm) can be read and
    replaced during a forward pass: ``read(module_output) -> [..., pos, heads, d_head]`` and ``write(module_output,
    new) -> new module output``. Keys have one head per key/value group (``n_kv_heads``), as TransformerLens'
    ``hook_k`` has: query head ``h`` reads key head ``h // (n_heads // n_kv_heads)`` (HF ``repeat_kv`` order)."""

    module: object
    read: Callable
    write: Callable


def _views(layout_name: str, dh: int):
    """``(read, write)`` between a module output in ``layout_name`` and ``[..., pos, heads, d_head]``."""
    if layout_name == "flat":
        return (lambda out: out.unflatten(-1, (-1, dh))), (lambda out, new: new.flatten(-2).to(out))
    if layout_name == "heads":
        return (lambda out: out), (lambda out, new: new.to(out))
    return (lambda out: out.transpose(-2, -3)), (lambda out, new: new.transpose(-2, -3).to(out))  # heads_first


def _fused(model, layer: int, j: int):
    """``(read, write)`` of the queries (``j = 0``) or keys (``j = 1``) inside a fused QKV projection's output."""
    lay, fam = layout(model), family(model)
    H, dh = lay.n_heads, lay.d_head
    if fam.qkv == "gpt2":  # c_attn output: [q heads | k heads | v heads]
        sl = slice(j * H * dh, (j + 1) * H * dh)

        def write(out, new):
            out = out.clone()
            out[..., sl] = new.flatten(-2)
            return out
        return (lambda out: out[..., sl].unflatten(-1, (H, dh))), write
    # neox: query_key_value output viewed as [H, (q | k | v), d_head]

    def write_heads(out, new):
        out = out.clone()
        out.unflatten(-1, (H, 3 * dh))[..., j * dh: (j + 1) * dh] = new
        return out
    return (lambda out: out.unflatten(-1, (H, 3 * dh))[..., j * dh: (j + 1) * dh]), write_heads


QK_SITES = ("q", "k", "q_normed", "k_normed")


def qk_source(model, layer: int, site: str) -> Source:
    """Where ``site`` (``q``, ``k``: the projection outputs, before any q/k norm and rotary; ``q_normed``,
    ``k_normed``: after the q/k norm, before rotary) of ``layer`` is read and written. A one-line
    :class:`UserError` for a normed site on a model without q/k norm."""
    lay, fam, att = layout(model), family(model), attention(model, layer)
    name = f"blocks.{layer}.attn.hook_{site}"
    is_key, normed = site.startswith("k"), site.endswith("normed")
    if normed and fam.qk_norm is None:
        raise UserError(f"{name}: {fam.name} has no q/k norm; its attention scores hook_q and hook_k")
    if not normed and fam.qkv != "separate":
        module = att.c_attn if fam.qkv == "gpt2" else att.query_key_value
        return Source(module, *_fused(model, layer, int(is_key)))
    module = getattr(att, ("k" if is_key else "q") + ("_norm" if normed else "_proj"))
    return Source(module, *_views(fam.qk_norm if normed else "flat", lay.d_head))


def key_slice(model, layer: int, head: int):
    """The module whose output holds ``layer``'s keys (before any q/k norm and rotary) and the slice of its
    last axis that is ``head``'s key, for writing (:func:`qk_source` reads them). A grouped-query head shares
    the key of its key/value group (HF ``repeat_kv`` order)."""
    lay, fam, att = layout(model), family(model), attention(model, layer)
    H, dh = lay.n_heads, lay.d_head
    if fam.qkv == "gpt2":  # c_attn output: [q heads | k heads | v heads]
        return att.c_attn, slice(H * dh + head * dh, H * dh + (head + 1) * dh)
    if fam.qkv == "neox":  # query_key_value output viewed as [H, (q | k | v), d_head]
        return att.query_key_value, slice((3 * head + 1) * dh, (3 * head + 2) * dh)
    g = head // (H // lay.n_kv_heads)
    return att.k_proj, slice(g * dh, (g + 1) * dh)


def qk_weights(model, layer: int):
    """Per-head query and key maps of ``layer`` in TransformerLens layout.

    Returns ``(W_Q [H, d_model, d_head], b_Q [H, d_head], W_K [H, d_model, d_head], b_K [H, d_head])`` as
    float32 CPU tensors detached from the model, so ``hook_q[h] = x @ W_Q[h] + b_Q[h]`` with ``x`` what
    attention reads (:func:`attention_input_site`). Grouped key/value heads are repeated per query head (HF
    ``repeat_kv`` order); missing biases are zeros; neither a q/k norm nor rotary is applied.
    """
    import torch

    lay, fam, att = layout(model), family(model), attention(model, layer)
    H, Hkv, d, dh = lay.n_heads, lay.n_kv_heads, lay.d_model, lay.d_head

    def f32(t):
        return t.detach().float().cpu()
    with torch.no_grad():
        if fam.qkv == "gpt2":  # Conv1D: out = x @ W + b, W [d_model, 3 H dh]
            W, b = f32(att.c_attn.weight), f32(att.c_attn.bias)
            W_Q = W[:, : H * dh].reshape(d, H, dh).permute(1, 0, 2)
            W_K = W[:, H * dh: 2 * H * dh].reshape(d, H, dh).permute(1, 0, 2)
            b_Q, b_K = b[: H * dh].reshape(H, dh), b[H * dh: 2 * H * dh].reshape(H, dh)
        elif fam.qkv == "neox":  # Linear: out = x @ W.T + b, out viewed as [H, (q|k|v) dh]
            lin = att.query_key_value
            W = f32(lin.weight).reshape(H, 3, dh, d)
            W_Q, W_K = W[:, 0].transpose(1, 2), W[:, 1].transpose(1, 2)
            b = f32(lin.bias).reshape(H, 3, dh) if lin.bias is not None else torch.zeros(H, 3, dh)
            b_Q, b_K = b[:, 0], b[:, 1]
        else:
            W_Q = f32(att.q_proj.weight).reshape(H, dh, d).transpose(1, 2)
            W_K = f32(att.k_proj.weight).reshape(Hkv, dh, d).transpose(1, 2).repeat_interleave(H // Hkv, 0)
            qb, kb = att.q_proj.bias, att.k_proj.bias
            b_Q = f32(qb).reshape(H, dh) if qb is not None else torch.zeros(H, dh)
            b_K = (f32(kb).reshape(Hkv, dh).repeat_interleave(H // Hkv, 0) if kb is not None
                   else torch.zeros(H, dh))
    return tuple(t.clone().contiguous() for t in (W_Q, b_Q, W_K, b_K))


# ---- norms -----------------------------------------------------------------------------------------------------
def norm_stats(model, norm, x):
    """TransformerLens' ``hook_normalized`` and ``hook_scale`` of the norm module ``norm`` on its input ``x``:
    ``x_c * rsqrt(mean(x_c^2) + eps)`` and ``sqrt(mean(x_c^2) + eps)`` (trailing axis of 1), with ``x_c = x``
    less its mean for a LayerNorm and ``x`` itself for an RMSNorm, the module's own ``eps``, in float32 (or
    float64 for a float64 input): the norm's output before its weight and bias."""
    import torch

    xf = x if x.dtype in (torch.float32, torch.float64) else x.float()
    if family(model).layer_norm:
        xf = xf - xf.mean(-1, keepdim=True)
    eps = next(getattr(norm, a) for a in ("eps", "variance_epsilon") if getattr(norm, a, None) is not None)
    var = xf.pow(2).mean(-1, keepdim=True) + eps
    return xf * torch.rsqrt(var), var.sqrt()


# ---- what sits between the projections and the score -------------------------------------------------------
def is_rotary(model) -> bool:
    """Whether the model's attention rotates queries and keys by position (every family but GPT-2)."""
    return family(model).rotary


def rotary_tables(model, max_offset: int, layer: int = 0):
    """The model's own rotary ``cos, sin`` tables of ``layer`` for offsets ``0..max_offset``
    (``[max_offset + 1, r]``, float64 numpy; ``r`` <= d_head is the rotated part, the rest passes unrotated, as
    in NeoX). Computed by the model's rotary module on its device; Gemma-3 has one base per layer type
    (sliding / full attention), so the tables depend on the layer there."""
    import torch

    emb = model.base_model.rotary_emb
    dev = next(model.parameters()).device
    dh = layout(model).d_head
    pos = torch.arange(max_offset + 1, device=dev)[None]
    extra = (model.config.layer_types[check_layer(model, layer)],) if family(model).rotary_per_layer_type else ()
    with torch.no_grad():
        cos, sin = emb(torch.zeros(1, max_offset + 1, dh, device=dev), pos, *extra)
    return tuple(t[0].detach().float().cpu().double().numpy() for t in (cos, sin))


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


def score_divisor(model, layer: int) -> float:
    """What ``q . k`` is divided by to give ``layer``'s attention logit, from the attention module's own
    ``scaling`` (``d_head^-1/2``; Gemma-2/3 ``query_pre_attn_scalar^-1/2``; GPT-2 also ``1 / (layer + 1)``
    when it scales by the inverse layer index, or 1 when it does not scale).

    ``scaling = n^-1/2`` with ``n`` a whole number in every family here; the divisor is then ``sqrt(n)``
    computed in float64, the number a ``1 / sqrt(d_head)`` scaling has always been divided by, so results
    stay bit-identical where the scaling is that. Otherwise ``1 / scaling``."""
    import numpy as np

    s = float(attention(model, layer).scaling)
    n = round(s ** -2)
    return float(np.sqrt(n)) if n >= 1 and abs(s * np.sqrt(n) - 1) < 1e-6 else 1.0 / s


def softcap(model, layer: int) -> float | None:
    """The cap ``c`` of ``layer``'s attention-logit soft-capping ``c tanh(s / c)`` (Gemma-2), or None."""
    if not family(model).softcap:
        return None
    c = getattr(attention(model, layer), "attn_logit_softcapping", None)
    return float(c) if c else None


def score_bound(model, layer: int) -> float | None:
    """The largest attention logit ``|s|`` that ``layer``'s weights allow for any input, or None where nothing
    bounds it: the soft cap ``c`` (Gemma-2), or on Qwen3 ``max|g_q| max|g_k| d_head / divisor`` (its per-head
    RMSNorm gives each query and key norm at most ``max|g| sqrt(d_head)`` (eps only shrinks it), rotary keeps
    the norm, and the score is ``q . k`` over :func:`score_divisor`). Other q/k-norm families (Gemma-3's
    ``1 + w`` gain, OLMo-2's norm over all heads at once) are not read: None. With
    ``ModelConfig.qk_logit_bound = B`` (fixed gains) this is ``B``; with learned gains it is what training made
    of them."""
    cap = softcap(model, layer)
    if cap is not None:
        return cap
    if family(model).name != "qwen3":
        return None
    att, d_head = attention(model, layer), layout(model).d_head
    g_q, g_k = (float(n.weight.detach().abs().max().double()) for n in (att.q_norm, att.k_norm))
    return g_q * g_k * d_head / score_divisor(model, layer)


def sliding_windows(model) -> list[int | None]:
    """Each layer's sliding attention window (HF ``sliding_window``: a query sees only keys fewer than that many
    tokens back), or None for full attention."""
    return [getattr(attention(model, L), "sliding_window", None) or None for L in range(model.config.num_hidden_layers)]
