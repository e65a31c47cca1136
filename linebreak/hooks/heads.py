"""Forward passes with hooks, for the QK and causal analyses: read what heads see and do, and edit it.

- :func:`forward` runs a batch (eager attention, no grad) and returns the logits, every layer's attention
  pattern and, on request, each layer's attention input after its norm (TL
  ``blocks.{L}.ln1.hook_normalized``), the residual stream entering a block (``hook_resid_pre``) and each
  attention layer's per-head mixed values before the output projection (TL ``blocks.{L}.attn.hook_z``).
- :func:`ablate_heads`, :func:`edit_resid_pre` are context managers that change the forward pass: zero some
  heads' outputs (their slice of the output projection's input), or rewrite the residual stream entering a
  block.
- :func:`head_outputs` maps one head's ``z`` through the output projection (``hook_result`` in TL).
- :func:`newline_loss` splits next-token cross-entropy into positions whose next token is the newline and
  all other positions (the measure every causal check reports).

Heads are located through :mod:`linebreak.hooks.arch`; the output projection (``c_proj`` / ``o_proj`` /
``dense``) is found here, since only the causal analyses need it.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from linebreak.hooks import arch


def out_proj(model, layer: int):
    """The attention output projection of ``layer``; its input is TL ``hook_z`` as [..., H * d_head]."""
    att = arch.attention(model, layer)
    for name in ("c_proj", "o_proj", "dense"):
        if hasattr(att, name):
            return getattr(att, name)
    raise AttributeError(f"no output projection found in {type(att).__name__}")


def _first_arg_hook(fn):
    """A forward pre-hook (with kwargs) that rewrites the first tensor input with ``fn``."""
    def hook(module, args, kwargs):
        if args:
            return (fn(args[0]), *args[1:]), kwargs
        key = "hidden_states" if "hidden_states" in kwargs else next(iter(kwargs))
        kwargs = dict(kwargs)
        kwargs[key] = fn(kwargs[key])
        return args, kwargs
    return hook


def _first_arg(args, kwargs):
    if args:
        return args[0]
    return kwargs["hidden_states"] if "hidden_states" in kwargs else next(iter(kwargs.values()))


def forward(model, input_ids, ln1: bool = False, resid_pre: tuple[int, ...] = (), z: tuple[int, ...] = (),
            attention: bool = True) -> dict:
    """One no-grad forward pass over ``input_ids [B, T]`` (int64 tensor).

    Returns ``logits [B, T, V]``, ``pattern`` (list over layers of ``[B, H, T, T]``, if ``attention``),
    ``ln1`` (list over layers of ``[B, T, d_model]``, if asked), ``resid_pre`` and ``z`` (dicts layer ->
    ``[B, T, d_model]`` / ``[B, T, H, d_head]`` for the layers asked).
    """
    import torch

    lay = arch.layout(model)
    store: dict = {"ln1": [None] * lay.n_layers, "resid_pre": {}, "z": {}}
    handles = []
    try:
        if ln1:
            for L in range(lay.n_layers):
                def save_ln(m, a, out, L=L):
                    store["ln1"][L] = out.detach()
                handles.append(arch.attn_norm(model, L).register_forward_hook(save_ln))
        for L in resid_pre:
            def save_resid(m, a, kw, L=L):
                store["resid_pre"][L] = _first_arg(a, kw).detach()
            handles.append(arch.blocks(model)[L].register_forward_pre_hook(save_resid, with_kwargs=True))
        for L in z:
            def save_z(m, a, kw, L=L):
                x = _first_arg(a, kw).detach()
                store["z"][L] = x.unflatten(-1, (lay.n_heads, lay.d_head))
            handles.append(out_proj(model, L).register_forward_pre_hook(save_z, with_kwargs=True))
        with torch.no_grad():
            out = model(input_ids=input_ids, output_attentions=attention)
    finally:
        for h in handles:
            h.remove()
    res = {"logits": out.logits.float(), "resid_pre": store["resid_pre"], "z": store["z"]}
    if attention:
        if out.attentions is None or any(a is None for a in out.attentions):
            raise RuntimeError("the model returned no attention patterns (is attention eager?)")
        res["pattern"] = [a.float() for a in out.attentions]
    if ln1:
        res["ln1"] = store["ln1"]
    return res


@contextmanager
def ablate_heads(model, layer: int, heads, mean_z=None):
    """Remove heads of ``layer`` from the forward pass inside the block.

    Each head's slice of the output-projection input (its ``z``) is set to zero, or to ``mean_z[h]``
    (``[H, d_head]``, mean ablation) when given.
    """
    lay = arch.layout(model)
    heads = list(heads)

    def edit(x):
        x = x.clone().unflatten(-1, (lay.n_heads, lay.d_head))
        for h in heads:
            x[..., h, :] = 0.0 if mean_z is None else mean_z[h].to(x)
        return x.flatten(-2)

    handle = out_proj(model, layer).register_forward_pre_hook(_first_arg_hook(edit), with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def edit_keys(model, layer: int, head: int, fn):
    """Replace ``head``'s keys in ``layer`` by ``fn(k, input_ids)`` inside the forward pass (``k [B, T, d_head]``,
    before any rotary; ``input_ids [B, T]`` the batch being run, so that ``fn`` can pick token positions)."""
    module, sl = arch.key_slice(model, layer, head)
    batch: dict = {}

    def grab(m, args, kwargs):
        batch["ids"] = kwargs["input_ids"] if "input_ids" in kwargs else args[0]

    def edit(m, args, out):
        out = out.clone()
        out[..., sl] = fn(out[..., sl], batch["ids"])
        return out

    handles = [model.register_forward_pre_hook(grab, with_kwargs=True), module.register_forward_hook(edit)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def edit_resid_pre(model, layer: int, fn):
    """Replace the residual stream entering block ``layer`` by ``fn(x)`` (``x [B, T, d_model]``)."""
    block = arch.blocks(model)[arch.check_layer(model, layer)]
    handle = block.register_forward_pre_hook(_first_arg_hook(fn), with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def head_outputs(model, layer: int, z, heads) -> dict:
    """Each head's write into the residual stream: ``z[..., h, :]`` through the output projection alone
    (no bias). ``z [..., H, d_head]``; returns head -> ``[..., d_model]``."""
    import torch

    proj = out_proj(model, layer)
    out = {}
    with torch.no_grad():
        zero = proj(torch.zeros_like(z.flatten(-2)[..., :1, :]))  # the bias alone, broadcastable
        for h in heads:
            only = torch.zeros_like(z)
            only[..., h, :] = z[..., h, :]
            out[h] = proj(only.flatten(-2)) - zero
    return out


def newline_loss(logits, input_ids, newline_id: int) -> dict:
    """Cross-entropy of the next token, on positions whose next token is the newline and on all others.

    Returns sums and counts (so batches add up) and the probability given to the newline on each position.
    """
    import torch

    lp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    target = input_ids[:, 1:]
    nll = -lp.gather(-1, target[..., None])[..., 0]
    is_nl = target == newline_id
    return {"nl_sum": float(nll[is_nl].sum()), "nl_n": int(is_nl.sum()),
            "other_sum": float(nll[~is_nl].sum()), "other_n": int((~is_nl).sum()),
            "p_newline": lp[..., newline_id].exp()}


def batches(n: int, size: int):
    for s in range(0, n, size):
        yield s, min(n, s + size)


def as_tensor(ids: np.ndarray):
    import torch

    return torch.as_tensor(np.ascontiguousarray(ids), dtype=torch.long)
