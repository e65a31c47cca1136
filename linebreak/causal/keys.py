"""Key ablation: take away what one head's keys at newline tokens say about their line (at ``attn.hook_k``).

Three ways, each compared with removing the head: ``mean`` sets each newline key to the mean newline key;
``resample`` to the key of a random other newline (a real key, so the head stays on its input distribution,
but one from another line, mostly another document); ``resample_same_length`` to the key of a random newline
that ends a line of the *same length* (everything but the width changes). A head that compares count with
width at the key loses its comparison to the first two and keeps it under the third; a head gated by what its
query knows loses nothing.
"""

from __future__ import annotations

import numpy as np

from linebreak.causal.config import CausalConfig
from linebreak.causal.loss import against, evaluate
from linebreak.causal.result import KeyAblation, Loss, LossDelta
from linebreak.hooks.interventions import edit_keys
from linebreak.hooks.run import as_tensor, batches, run_with_hooks
from linebreak.rules.causal import MIN_LOSS_CHANGE


def resample_rows(k, mask, pool, gen, groups=None, pool_groups=None, same: bool = True):
    """``k [..., d]`` with every row where ``mask`` holds replaced by a row of ``pool [N, d]`` drawn uniformly
    (``gen``: a seeded torch generator); the other rows unchanged. With ``groups`` (same shape as ``mask``) and
    ``pool_groups [N]``, each row is drawn from the pool rows of its own group (``same=False``: of every *other*
    group; a row with no such pool row keeps its own value)."""
    import torch

    k = k.clone()
    if groups is None:
        k[mask] = pool[torch.randint(len(pool), (int(mask.sum()),), generator=gen)].to(k)
        return k
    for g in torch.unique(groups[mask]).tolist():
        rows, choices = mask & (groups == g), torch.nonzero((pool_groups == g) == same)[:, 0]
        if len(choices):
            k[rows] = pool[choices[torch.randint(len(choices), (int(rows.sum()),), generator=gen)]].to(k)
    return k


def line_lengths(x, newline_id: int, token_lengths: np.ndarray):
    """The length of the line each newline of ``x [B, T]`` ends (-1 elsewhere), as a tensor like ``x``."""
    import torch

    from linebreak.corpus.labels import labels_for_split

    ids = x.cpu().numpy()
    lab = labels_for_split(ids, np.zeros(len(ids)), token_lengths, newline_id)
    return torch.as_tensor(lab["line_len"]).to(x.device)


def key_ablation(model, ids, newline_id: int, layer: int, head: int, cfg: CausalConfig, base: Loss,
                 token_lengths: np.ndarray) -> dict[str, LossDelta]:
    """The three key ablations of ``head`` of ``layer`` over ``ids`` (see the module doc), against ``base``.
    The pool of newline keys is kept float32 on the CPU; each replacement goes to the key's device and dtype."""
    import torch

    pool: list = []
    pool_len: list = []

    def collect(k, x):
        m = x == newline_id
        pool.append(k[m].detach().float().cpu())
        pool_len.append(line_lengths(x, newline_id, token_lengths)[m].cpu())
        return k

    with edit_keys(model, layer, head, collect):
        for s, e in batches(len(ids), cfg.batch_size):
            run_with_hooks(model, as_tensor(ids[s:e]))
    keys, key_len = torch.cat(pool), torch.cat(pool_len)
    mean = keys.double().mean(0).float()
    gen = torch.Generator().manual_seed(cfg.seed)

    def frozen(k, x):
        return torch.where((x == newline_id)[..., None], mean.to(k), k)

    def resampled(k, x):
        return resample_rows(k, x == newline_id, keys, gen)

    def same_length(k, x):
        return resample_rows(k, x == newline_id, keys, gen, line_lengths(x, newline_id, token_lengths), key_len)

    out = {}
    for name, fn in (("mean", frozen), ("resample", resampled), ("resample_same_length", same_length)):
        with edit_keys(model, layer, head, fn):
            out[name] = against(base, evaluate(model, ids, newline_id, cfg.batch_size))
    return out


def key_ablations(model, ids, newline_id: int, removed: dict, cfg: CausalConfig, base: Loss,
                  token_lengths: np.ndarray, comparisons: dict | None = None) -> dict[str, KeyAblation]:
    """:func:`key_ablation` of each head of ``removed`` (``{(layer, head): newline-loss rise when the head is
    removed}``), beside that rise: ``key_share`` = the rise from each key ablation over the rise from removing
    the head (about 1 for a head whose effect runs through the width at the key; nan when removing the head
    does not raise it). The head's logit split from the QK stage (``comparisons``: name -> ``comparison``) is
    copied beside it. Keyed by head name."""
    comparisons = comparisons or {}
    out = {}
    for (L, h), d_head in removed.items():
        name = f"L{L}H{h}"
        k = key_ablation(model, ids, newline_id, L, h, cfg, base, token_lengths)
        share = {m: k[m].d_newline / d_head if d_head > MIN_LOSS_CHANGE else float("nan") for m in k}
        out[name] = KeyAblation(mean=k["mean"], resample=k["resample"], resample_same_length=k["resample_same_length"],
                                head_d_newline=d_head, key_share=share, comparison=comparisons.get(name))
    return out
