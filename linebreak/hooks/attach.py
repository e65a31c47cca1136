"""Where each TransformerLens hook point sits on a Hugging Face model, and how a hook function is attached there.

:func:`attach` turns ``(name, fn)`` into PyTorch module hooks on the modules :mod:`linebreak.hooks.arch`
finds: ``fn(tensor, name)`` sees the point's tensor (shape as declared in :mod:`linebreak.hooks.points`) and
may return a replacement, which the model then uses (like a TransformerLens hook). Returning ``None`` leaves
the forward pass untouched, bit for bit.

    hook_resid_pre        pre-hook of block L (its first input)
    ln1.hook_normalized   output of the attention norm
    attn.hook_q / hook_k  output of the Q/K projection (GPT-2, NeoX: the fused QKV), viewed per head
    attn.hook_z           pre-hook of the attention output projection, viewed per head
    attn.hook_pattern     the attention module's second output (eager attention's probabilities)
    hook_resid_mid        pre-hook of the MLP norm (its input)
    hook_resid_post       output of block L

A module's "first input" is its first positional argument or, when called with keywords only, its
``hidden_states`` (:func:`first_input`): the one place that knows how Hugging Face blocks are called.
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


def _qk_writer(model, layer: int, site: str):
    """``write(module_output, new [..., H, d_head]) -> new module output`` for the queries or keys of ``layer``."""
    lay = arch.layout(model)
    H, Hkv, dh = lay.n_heads, lay.n_kv_heads, lay.d_head
    if lay.arch == "gpt2":  # c_attn output: [q heads | k heads | v heads]
        off = 0 if site == "q" else H * dh

        def write(out, new):
            out = out.clone()
            out[..., off: off + H * dh] = new.flatten(-2)
            return out
    elif lay.arch == "neox":  # query_key_value output viewed as [H, (q | k | v), d_head]
        j = 0 if site == "q" else 1

        def write(out, new):
            out = out.clone()
            out.unflatten(-1, (H, 3 * dh))[..., j * dh: (j + 1) * dh] = new
            return out
    elif site == "q":
        def write(out, new):
            return new.flatten(-2).to(out)
    else:  # grouped keys: every query head of a key group must carry the group's one key
        rep = H // Hkv

        def write(out, new):
            grouped = new.unflatten(-2, (Hkv, rep))
            if rep > 1 and not bool((grouped == grouped[..., :1, :]).all()):
                raise ValueError(f"blocks.{layer}.attn.hook_k: the query heads of a key group share one key "
                                 f"(grouped-query attention); give them the same replacement")
            return grouped[..., 0, :].flatten(-2).to(out)
    return write


def attach(model, name: str, fn) -> list:
    """Register ``fn(tensor, name)`` at the hook point ``name``; returns the PyTorch hook handles."""
    site, L = parse_name(name)
    arch.check_layer(model, L)
    if not POINTS[site].writable:
        inner = fn

        def fn(x, n):  # noqa: F811 - the same hook, refusing a replacement
            _read_only(n, inner(x, n))

    def pre(m, args, kwargs):
        new = fn(first_input(args, kwargs), name)
        return None if new is None else with_first_input(args, kwargs, new)

    if site == "resid_pre":
        return [arch.blocks(model)[L].register_forward_pre_hook(pre, with_kwargs=True)]
    if site == "resid_mid":
        if arch.parallel_residual(model):
            raise ValueError(f"{name}: a parallel-residual block has no resid_mid (attention and MLP both read "
                             "resid_pre)")
        return [arch.mlp_norm(model, L).register_forward_pre_hook(pre, with_kwargs=True)]
    if site == "resid_post":
        def post(m, args, out):
            new = fn(_first(out), name)
            return None if new is None else ((new, *out[1:]) if isinstance(out, tuple) else new)
        return [arch.blocks(model)[L].register_forward_hook(post)]
    if site == "ln1":
        return [arch.attn_norm(model, L).register_forward_hook(lambda m, a, out: fn(out, name))]
    if site == "z":
        lay = arch.layout(model)

        def z_pre(m, args, kwargs):
            new = fn(first_input(args, kwargs).unflatten(-1, (lay.n_heads, lay.d_head)), name)
            return None if new is None else with_first_input(args, kwargs, new.flatten(-2))
        return [arch.out_proj(model, L).register_forward_pre_hook(z_pre, with_kwargs=True)]
    if site == "pattern":
        def pattern(m, args, out):
            if not isinstance(out, tuple) or len(out) < 2 or out[1] is None:
                raise RuntimeError("the model returned no attention patterns (is attention eager?)")
            fn(out[1], name)
        return [arch.attention(model, L).register_forward_hook(pattern)]
    handles, write = [], _qk_writer(model, L, site)  # q, k
    for module, extract in arch.qk_sources(model, L):
        def qk(m, args, out, extract=extract):
            parts = extract(out)
            if site not in parts:
                return None
            new = fn(parts[site], name)
            return None if new is None else write(out, new)
        handles.append(module.register_forward_hook(qk))
    return handles
