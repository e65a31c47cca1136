"""The former hooks interface, kept for callers not yet moved to :mod:`linebreak.hooks.run` (to be removed).

:func:`forward` is :func:`linebreak.hooks.run.run_with_cache` returning the old dict (``ln1`` list,
``resid_pre`` / ``z`` dicts by layer, ``pattern`` list); everything else is re-exported from its new home:
:mod:`linebreak.hooks.interventions` (``ablate_heads``, ``edit_keys``, ``edit_resid_pre``),
:mod:`linebreak.hooks.measure` (``head_outputs``, ``newline_loss``), :mod:`linebreak.hooks.run`
(``batches``, ``as_tensor``) and :mod:`linebreak.hooks.arch` (``out_proj``). Results are identical.
"""

from __future__ import annotations

from linebreak.hooks import arch
from linebreak.hooks.arch import out_proj
from linebreak.hooks.interventions import ablate_heads, edit_keys, edit_resid_pre
from linebreak.hooks.measure import head_outputs, newline_loss
from linebreak.hooks.points import hook_name
from linebreak.hooks.run import as_tensor, batches, run_with_cache

__all__ = ["forward", "ablate_heads", "edit_keys", "edit_resid_pre", "head_outputs", "newline_loss", "batches",
           "as_tensor", "out_proj"]


def forward(model, input_ids, ln1: bool = False, resid_pre: tuple[int, ...] = (), z: tuple[int, ...] = (),
            attention: bool = True) -> dict:
    """One no-grad forward pass over ``input_ids [B, T]`` (int64 tensor).

    Returns ``logits [B, T, V]``, ``pattern`` (list over layers of ``[B, H, T, T]``, if ``attention``),
    ``ln1`` (list over layers of ``[B, T, d_model]``, if asked), ``resid_pre`` and ``z`` (dicts layer ->
    ``[B, T, d_model]`` / ``[B, T, H, d_head]`` for the layers asked).
    """
    n = arch.layout(model).n_layers
    names = ([hook_name("ln1", L) for L in range(n)] if ln1 else []) + [hook_name("resid_pre", L) for L in resid_pre]
    names += [hook_name("z", L) for L in z] + ([hook_name("pattern", L) for L in range(n)] if attention else [])
    logits, cache = run_with_cache(model, input_ids, names, output_attentions=attention)
    res = {"logits": logits.float(), "resid_pre": {L: cache[hook_name("resid_pre", L)] for L in resid_pre},
           "z": {L: cache[hook_name("z", L)] for L in z}}
    if attention:
        res["pattern"] = [cache[hook_name("pattern", L)].float() for L in range(n)]
    if ln1:
        res["ln1"] = [cache[hook_name("ln1", L)] for L in range(n)]
    return res
