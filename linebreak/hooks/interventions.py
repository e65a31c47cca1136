"""Interventions as hook functions on TransformerLens names, and small context managers that hold them.

- :func:`ablate_heads` (``attn.hook_z``): some heads' outputs removed: their ``z`` set to zero, or to a mean.
- :func:`edit_keys` (``attn.hook_k``, or ``hook_k_normed`` on a q/k-norm model): one head's keys rewritten by a
  function that also sees the token ids.
- :func:`edit_resid_pre` (``hook_resid_pre``): the residual stream entering a block rewritten.
- :func:`add_resid_noise` (``hook_resid_pre`` of every block, training mode only): relative Gaussian noise,
  the training pressure of ``linebreak train --resid-noise``.

Each context manager is :func:`linebreak.hooks.run.hooks` over one hook function, so the same edits can be
passed to :func:`linebreak.hooks.run.run_with_hooks` as ``fwd_hooks`` instead (``zero_heads``, ...).
"""

from __future__ import annotations

from contextlib import contextmanager

from linebreak.hooks import arch
from linebreak.hooks.points import hook_name
from linebreak.hooks.run import add_hooks, hooks


def zero_heads(heads, mean_z=None):
    """A ``hook_z`` function: each head of ``heads`` gets ``z = 0``, or ``mean_z[h]`` (``[H, d_head]``)."""
    heads = list(heads)

    def fn(z, name):
        z = z.clone()
        for h in heads:
            z[..., h, :] = 0.0 if mean_z is None else mean_z[h].to(z)
        return z
    return fn


@contextmanager
def ablate_heads(model, layer: int, heads, mean_z=None):
    """Remove ``heads`` of ``layer`` from every forward pass inside the block (zero or mean ablation at
    ``blocks.{layer}.attn.hook_z``: the head's slice of the output projection's input)."""
    with hooks(model, [(hook_name("z", layer), zero_heads(heads, mean_z))]):
        yield


def key_group(model, head: int) -> list[int]:
    """The query heads that share ``head``'s key (just ``[head]`` without grouped-query attention)."""
    lay = arch.layout(model)
    rep = lay.n_heads // lay.n_kv_heads
    g = head // rep
    return list(range(g * rep, (g + 1) * rep))


@contextmanager
def edit_keys(model, layer: int, head: int, fn):
    """Replace ``head``'s keys in ``layer`` by ``fn(k, input_ids)`` inside the block (``k [batch, pos, d_head]``
    before any rotary; ``input_ids [batch, pos]`` the batch being run, so ``fn`` can pick token positions). On
    a grouped-query model the key is shared: ``hook_k`` holds one key per key/value head, so every head of
    ``head``'s key group (:func:`key_group`) gets the new key. On a q/k-norm model (Qwen3, Gemma-3, OLMo-2) the
    keys are read and replaced after the norm (``attn.hook_k_normed``), where they are what the score uses: an
    edit before OLMo-2's norm, which spans every key head, would rescale the other heads' keys too."""
    batch: dict = {}
    lay = arch.layout(model)
    kv_head = head // (lay.n_heads // lay.n_kv_heads)

    def grab(m, args, kwargs):
        batch["ids"] = kwargs["input_ids"] if "input_ids" in kwargs else args[0]

    def edit(k, name):
        new = fn(k[..., kv_head, :], batch["ids"])
        k = k.clone()
        k[..., kv_head, :] = new
        return k

    handles = [model.register_forward_pre_hook(grab, with_kwargs=True)]
    try:
        site = "k_normed" if arch.has_qk_norm(model) else "k"
        with hooks(model, [(hook_name(site, layer), edit)]):
            yield
    finally:
        handles[0].remove()


@contextmanager
def edit_resid_pre(model, layer: int, fn):
    """Replace the residual stream entering block ``layer`` by ``fn(x)`` (``x [batch, pos, d_model]``)."""
    with hooks(model, [(hook_name("resid_pre", arch.check_layer(model, layer)), lambda x, name: fn(x))]):
        yield


def resid_noise(block, scale: float, generator):
    """A ``hook_resid_pre`` function adding ``N(0, (scale * rms)^2)`` while ``block`` is in training mode."""
    import torch

    def fn(h, name):
        if not block.training:
            return None
        rms = h.detach().pow(2).mean(-1, keepdim=True).sqrt()
        return h + scale * rms * torch.randn(h.shape, generator=generator, dtype=h.dtype, device=h.device)
    return fn


def add_resid_noise(model, scale: float, generator) -> list:
    """Hooks that add ``N(0, (scale * rms)^2)`` to every block's input (``hook_resid_pre``) in training mode.

    ``rms`` is each token's root-mean-square over the residual dimension (not differentiated through), so
    the noise is relative: a representation must keep its values apart by more than a fixed share of its own
    size. This is the pressure Gurnee et al. (2025) give for a curved count manifold: at a fixed norm, points
    on a curve can sit further apart than on a straight segment. Off in eval mode. One ``torch.randn`` draw
    per block per forward pass, blocks in order. Returns the hook handles (remove them when done).
    """
    return add_hooks(model, [(hook_name("resid_pre", L), resid_noise(b, scale, generator))
                             for L, b in enumerate(arch.blocks(model))])
