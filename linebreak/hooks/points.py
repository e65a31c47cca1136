"""The hook points of a model, declared once: TransformerLens name, shape, and whether a hook may replace it.

linebreak names every activation it reads or edits the way TransformerLens (4.x, ``TransformerBridge``) does,
and each name holds what TL holds under it, so that a reader who knows TL knows what each tensor is. Each site
is declared here once; :mod:`linebreak.hooks.attach` says where it sits on a Hugging Face model (through
:mod:`linebreak.hooks.arch`), :mod:`linebreak.hooks.run` runs a model with hook functions on these names.

    blocks.{L}.hook_resid_pre         [batch, pos, d_model]       the residual stream entering block L
    blocks.{L}.ln1.hook_out           [batch, pos, d_model]       the attention norm's output, its weight and
                                                                  bias included: what attention reads (none in
                                                                  a post-norm OLMo-2 block, where attention
                                                                  reads hook_resid_pre)
    blocks.{L}.ln1.hook_normalized    [batch, pos, d_model]       that norm before its weight and bias:
                                                                  x_c / sqrt(mean(x_c^2) + eps), x_c = x less
                                                                  its mean (LayerNorm) or x (RMSNorm)
    blocks.{L}.ln1.hook_scale         [batch, pos, 1]             sqrt(mean(x_c^2) + eps)
    blocks.{L}.attn.hook_q            [batch, pos, head, d_head]  the query projection's output: before any q/k
                                                                  norm and rotary
    blocks.{L}.attn.hook_k            [batch, pos, kv_head, d_head]  the key projection's output, one key per
                                                                  key/value head (n_kv_heads < n_heads in a
                                                                  grouped-query model; query head h reads key
                                                                  head h // (n_heads // n_kv_heads))
    blocks.{L}.attn.hook_q_normed     [batch, pos, head, d_head]  after the q/k norm, before rotary (Qwen3,
    blocks.{L}.attn.hook_k_normed     [batch, pos, kv_head, d_head]  Gemma-3, OLMo-2 only): what the score uses
    blocks.{L}.attn.hook_pattern      [batch, head, q, k]         attention probabilities (eager attention)
    blocks.{L}.attn.hook_z            [batch, pos, head, d_head]  per-head mixed values, the output
                                                                  projection's input
    blocks.{L}.hook_resid_mid         [batch, pos, d_model]       the residual after attention (the MLP's norm's
                                                                  input; none in a parallel block)
    blocks.{L}.hook_resid_post        [batch, pos, d_model]       the residual stream leaving block L

The short site ``ln1`` (what settings name, e.g. ``--sites ln1``) is ``ln1.hook_out``: what attention reads.
TransformerLens lays ``hook_q_normed`` out as ``[batch, head, pos, d_head]`` after a per-head norm and flat after
OLMo-2's whole-projection norm; linebreak keeps every per-head tensor in ``hook_q``'s layout.

``hook_resid_mid``, ``hook_pattern`` and the ``ln1`` statistics can be read, not replaced: a Hugging Face block
adds the residual and applies the pattern inside its own forward, after any hook could see them, and the norm
never materialises its statistics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class HookPoint:
    site: str  # the short name linebreak's settings use ("resid_pre", "q", ...)
    template: str  # the TransformerLens name, with {L} for the layer
    shape: str  # the tensor's axes
    writable: bool  # whether a hook function may return a replacement


POINTS: dict[str, HookPoint] = {p.site: p for p in (
    HookPoint("resid_pre", "blocks.{L}.hook_resid_pre", "[batch, pos, d_model]", True),
    HookPoint("resid_mid", "blocks.{L}.hook_resid_mid", "[batch, pos, d_model]", False),
    HookPoint("resid_post", "blocks.{L}.hook_resid_post", "[batch, pos, d_model]", True),
    HookPoint("ln1", "blocks.{L}.ln1.hook_out", "[batch, pos, d_model]", True),
    HookPoint("ln1_normalized", "blocks.{L}.ln1.hook_normalized", "[batch, pos, d_model]", False),
    HookPoint("ln1_scale", "blocks.{L}.ln1.hook_scale", "[batch, pos, 1]", False),
    HookPoint("q", "blocks.{L}.attn.hook_q", "[batch, pos, head, d_head]", True),
    HookPoint("k", "blocks.{L}.attn.hook_k", "[batch, pos, kv_head, d_head]", True),
    HookPoint("q_normed", "blocks.{L}.attn.hook_q_normed", "[batch, pos, head, d_head]", True),
    HookPoint("k_normed", "blocks.{L}.attn.hook_k_normed", "[batch, pos, kv_head, d_head]", True),
    HookPoint("z", "blocks.{L}.attn.hook_z", "[batch, pos, head, d_head]", True),
    HookPoint("pattern", "blocks.{L}.attn.hook_pattern", "[batch, head, q, k]", False),
)}

_NAME = re.compile(r"blocks\.(\d+)\.(.+)")
_BY_SUFFIX = {p.template.split("{L}.")[1]: p.site for p in POINTS.values()}


def hook_name(site: str, layer: int) -> str:
    """TransformerLens name of ``site`` at ``layer`` (e.g. ``("q", 2) -> "blocks.2.attn.hook_q"``)."""
    return POINTS[site].template.format(L=layer)


def parse_name(name: str) -> tuple[str, int]:
    """``"blocks.2.attn.hook_q" -> ("q", 2)``; a ``ValueError`` naming the known points otherwise."""
    m = _NAME.fullmatch(name)
    if not m or m.group(2) not in _BY_SUFFIX:
        raise ValueError(f"unknown hook point {name!r}; known: "
                         + ", ".join(p.template for p in POINTS.values()))
    return _BY_SUFFIX[m.group(2)], int(m.group(1))
