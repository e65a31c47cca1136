"""Where each TransformerLens hook point sits on a Hugging Face model, and how a hook function is attached there.

:func:`attach` turns ``(name, fn)`` into PyTorch module hooks on the modules :mod:`linebreak.hooks.arch`
finds: ``fn(tensor, name)`` sees the point's tensor (shape as declared in :mod:`linebreak.hooks.points`) and
may return a replacement, which the model then uses (like a TransformerLens hook). Returning ``None`` leaves
the forward pass untouched, bit for bit.

    hook_resid_pre                 pre-hook of block L (its first input)
    ln1.hook_out                   output of the attention norm (none in a post-norm block)
    ln1.hook_normalized / _scale   computed from the attention norm's input (arch.norm_stats), read-only
    attn.hook_q / hook_k           output of the Q/K projection (GPT-2, NeoX: the fused QKV), viewed per head
    attn.hook_q_normed / _k_normed output of the attention's q_norm / k_norm, viewed per head
    attn.hook_z                    pre-hook of the attention output projection, viewed per head
    attn.hook_pattern              the attention module's second output (eager attention's probabilities)
    hook_resid_mid                 pre-hook of the module that reads it (the MLP's norm, or the MLP itself)
    hook_resid_post                output of block L

A module's "first input" is its first positional argument or, when called with keywords only, its
``hidden_states`` (:func:`first_input`): the one place that knows how Hugging Face blocks are called. A point
the model does not have (``ln1`` in OLMo-2, ``hook_q_normed`` without a q/k norm) is a one-line
:class:`~linebreak.io.UserError` from :mod:`linebreak.hooks.arch`.
"""

from __future__ import annotations

from linebreak.hooks import arch
from linebreak.hooks.points import POINTS, parse_name


def first_input(args: tuple, kwargs: dict):
    """The tensor a module is called on: its first positional argument, else ``hidden_states``, else the first
    keyword argument."""
    if args:
        return args[0]
    return kwargs["hidden_states"] if "hidden_states" in kwargs else next(iter(kwargs.values()))


def with_first_input(args: tuple, kwargs: dict, x) -> tuple[tuple, dict]:
    """``(args, kwargs)`` with the tensor :func:`first_input` reads replaced by ``x`` (for a pre-hook to return)."""
    if args:
        return (x, *args[1:]), kwargs
    key = "hidden_states" if "hidden_states" in kwargs else next(iter(kwargs))
    return args, {**kwargs, key: x}


def _first(out):
    return out[0] if isinstance(out, tuple) else out


def _read_only(name: str, new) -> None:
    if new is not None:
        raise ValueError(f"{name} can be read, not replaced (the block uses it inside its own forward)")


def _on_input(module, name, fn) -> list:
    """``fn`` on ``module``'s first input (a pre-hook; a replacement becomes that input)."""
    def pre(m, args, kwargs):
        new = fn(first_input(args, kwargs), name)
        return None if new is None else with_first_input(args, kwargs, new)
    return [module.register_forward_pre_hook(pre, with_kwargs=True)]


def _resid_pre(model, L, name, fn):
    return _on_input(arch.blocks(model)[L], name, fn)


def _resid_mid(model, L, name, fn):
    if arch.parallel_residual(model):
        raise ValueError(f"{name}: a parallel-residual block has no resid_mid (attention and MLP both read "
                         "resid_pre)")
    return _on_input(arch.resid_mid_reader(model, L), name, fn)


def _resid_post(model, L, name, fn):
    def post(m, args, out):
        new = fn(_first(out), name)
        return None if new is None else ((new, *out[1:]) if isinstance(out, tuple) else new)
    return [arch.blocks(model)[L].register_forward_hook(post)]


def _ln1(model, L, name, fn):
    return [arch.attn_norm(model, L).register_forward_hook(lambda m, a, out: fn(out, name))]


def _ln1_stat(j: int):
    """Attach ``fn`` to TL's ``ln1.hook_normalized`` (``j = 0``) or ``ln1.hook_scale`` (``j = 1``)."""
    def attach_stat(model, L, name, fn):
        def stat(m, args, kwargs, out):
            fn(arch.norm_stats(model, m, first_input(args, kwargs))[j], name)
        return [arch.attn_norm(model, L).register_forward_hook(stat, with_kwargs=True)]
    return attach_stat


def _z(model, L, name, fn):
    lay = arch.layout(model)

    def per_head(x, n):
        new = fn(x.unflatten(-1, (lay.n_heads, lay.d_head)), n)
        return None if new is None else new.flatten(-2)
    return _on_input(arch.out_proj(model, L), name, per_head)


def _pattern(model, L, name, fn):
    def pattern(m, args, out):
        if not isinstance(out, tuple) or len(out) < 2 or out[1] is None:
            raise RuntimeError("the model returned no attention patterns (is attention eager?)")
        fn(out[1], name)
    return [arch.attention(model, L).register_forward_hook(pattern)]


def _qk(site: str):
    """Attach ``fn`` to the per-head queries or keys ``site`` (before or after the q/k norm)."""
    def attach_qk(model, L, name, fn):
        src = arch.qk_source(model, L, site)

        def qk(m, args, out):
            new = fn(src.read(out), name)
            return None if new is None else src.write(out, new)
        return [src.module.register_forward_hook(qk)]
    return attach_qk


_ATTACH = {"resid_pre": _resid_pre, "resid_mid": _resid_mid, "resid_post": _resid_post, "ln1": _ln1,
           "ln1_normalized": _ln1_stat(0), "ln1_scale": _ln1_stat(1), "z": _z, "pattern": _pattern,
           **{s: _qk(s) for s in arch.QK_SITES}}
assert set(_ATTACH) == set(POINTS), "every declared hook point needs a place on the model"


def attach(model, name: str, fn) -> list:
    """Register ``fn(tensor, name)`` at the hook point ``name``; returns the PyTorch hook handles."""
    site, L = parse_name(name)
    arch.check_layer(model, L)
    if not POINTS[site].writable:
        inner = fn

        def fn(x, n):  # noqa: F811 - the same hook, refusing a replacement
            _read_only(n, inner(x, n))
    return _ATTACH[site](model, L, name, fn)
