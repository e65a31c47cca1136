"""The count representation in the residual stream, and patching it (all at ``hook_resid_pre`` of one layer).

- :func:`count_means`: per-count means over non-initial word tokens (what the count subspace is built from).
- :func:`count_effects`: the count main effects of an additive fit ``x ~ a[width] + b[count]`` (the count
  with the width held fixed).
- :func:`count_patching`: at one word token per document, ``x' = x - mu[c] + mu[c + delta]``; the probability
  given to a newline next should rise with ``delta``.
"""

from __future__ import annotations

import numpy as np

from linebreak.causal.config import CausalConfig
from linebreak.causal.result import Patching, PatchPoint
from linebreak.groups import ValueSums, group_means
from linebreak.hooks import arch
from linebreak.hooks.points import hook_name
from linebreak.hooks.run import as_tensor, batches, run_with_cache, run_with_hooks


def _resid_pre(model, ids, layer: int, batch_size: int):
    """``(start, end, hook_resid_pre [b, T, d] as float64 numpy)`` for each batch of ``ids``."""
    name = hook_name("resid_pre", layer)
    for s, e in batches(len(ids), batch_size):
        _, cache = run_with_cache(model, as_tensor(ids[s:e]), [name])
        yield s, e, cache[name].double().numpy()


def count_means(model, ids, lab, layer: int, cfg: CausalConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-count means of ``hook_resid_pre`` of ``layer`` over non-initial word tokens: (counts, [V, d])."""
    sums = ValueSums(int(lab["count"].max()) + 1, (arch.layout(model).d_model,))
    for s, e, X in _resid_pre(model, ids, layer, cfg.batch_size):
        m, c = lab["query"][s:e], lab["count"][s:e]
        sums.add(c[m], X[m])
    return sums.means(cfg.min_per_value)


def count_effects(model, ids, lab, layer: int, cfg: CausalConfig, iters: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The count representation *with the width held fixed*: the count main effects ``b[c]`` of an additive
    fit ``x ~ a[width] + b[count]`` to ``hook_resid_pre`` of ``layer`` over non-initial word tokens
    (backfitting). Plain per-count means mix in width, because long counts occur only in wide documents: a
    patch along them would move the model's width estimate with its count. Returns (counts, [V, d])."""
    out_rows, c_rows, w_rows = [], [], []
    for s, e, X in _resid_pre(model, ids, layer, cfg.batch_size):
        m = lab["query"][s:e]
        out_rows.append(X[m])
        c_rows.append(lab["count"][s:e][m])
        w_rows.append(lab["width"][s:e][m])
    X, c, w = np.concatenate(out_rows), np.concatenate(c_rows), np.concatenate(w_rows)
    n_c, n_w = int(c.max()) + 1, int(w.max()) + 1
    a = np.zeros((n_w, X.shape[1]))
    for _ in range(iters):
        b = group_means(X - a[w], c, n_c)
        a = group_means(X - b[c], w, n_w)
    keep = np.bincount(c, minlength=n_c) >= cfg.min_per_value
    return np.nonzero(keep)[0], b[keep]


def _picks(ids, lab, counts, deltas: list[int], cfg: CausalConfig) -> list[list[tuple[int, int]]]:
    """Per pass, one (doc, position) per document: a later-line word token whose count and every count + delta
    have a mean (seeded)."""
    rng = np.random.default_rng(cfg.seed)
    ok = lab["query"] & (lab["line_index"] >= 1) & np.isin(lab["count"], counts)
    for d in deltas:
        ok &= np.isin(lab["count"] + d, counts)
    picks = []
    for _ in range(cfg.patch_passes):
        docs = [b for b in range(len(ids)) if ok[b].any()]
        picks.append([(b, int(rng.choice(np.nonzero(ok[b])[0]))) for b in docs])
    return picks


def count_patching(model, ids, lab, newline_id, layer, counts, means, cfg: CausalConfig) -> Patching:
    """Replace the count representation at one word token per document, ``x' = x - mu[c] + mu[c + delta]``
    (``mu`` from :func:`count_effects`: the count effect with the width held fixed),
    and read P(newline) at that same token. Only that token is patched (as the paper patched the last
    tokens of its prompt): patching every token would also lengthen the earlier lines the model reads the
    width from. Each of ``patch_passes`` passes patches a different (seeded) token per document."""
    import torch
    from scipy.stats import spearmanr

    deltas = list(cfg.patch_deltas)
    mu = {int(c): m for c, m in zip(counts, means)}
    picks = _picks(ids, lab, counts, deltas, cfg)
    name = hook_name("resid_pre", layer)
    curve = []
    for delta in deltas:
        p_all = []
        for pick in picks:
            if not pick:
                continue
            b, t = (np.array(x) for x in zip(*pick))
            shift = np.zeros(ids.shape + (means.shape[1],), dtype=np.float32)
            shift[b, t] = np.stack([mu[int(c) + delta] - mu[int(c)] for c in lab["count"][b, t]])
            at = np.zeros(ids.shape, dtype=bool)
            at[b, t] = True
            for s, e in batches(len(ids), cfg.batch_size):
                sh = torch.as_tensor(shift[s:e])
                logits = run_with_hooks(model, as_tensor(ids[s:e]), [(name, lambda x, n, sh=sh: x + sh.to(x))])
                p_all.append(torch.softmax(logits.float(), -1)[..., newline_id].cpu().numpy()[at[s:e]])
        p = np.concatenate(p_all) if p_all else np.array([])
        curve.append(PatchPoint(delta=delta, p_newline=float(p.mean()) if len(p) else float("nan"), n=len(p)))
    ps = [c.p_newline for c in curve]
    rho = float(spearmanr(deltas, ps).statistic) if len(deltas) >= 3 else float("nan")
    steps = np.diff(ps)
    return Patching(layer=layer, curve=curve, spearman=rho,
                    monotone_fraction=float((steps > 0).mean()) if len(steps) else float("nan"))
