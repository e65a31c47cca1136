"""A closer look at the top heads: their matrices, both sides in 3-D, and what their outputs carry.

The verdict rests on summary numbers; these details are what the figures draw (:mod:`linebreak.plots.qk`):

- :func:`top_head` — a head's three cosine matrices and mean logits, and the joint PCA of the count means and
  width means, once in the residual stream (what attention reads) and once through the head (its ``W_Q`` /
  ``W_K``, or its own normed queries and keys on a q/k-norm model: the twist made visible);
- :func:`top_head_outputs` — a second forward pass that sums the top heads' outputs (each head's ``z`` through
  the output projection alone) per characters remaining and reduces them by PCA. The paper finds 2 PCs carry
  92 % of the boundary heads' summed output.
"""

from __future__ import annotations

import numpy as np

from linebreak.hooks.measure import head_outputs
from linebreak.hooks.points import hook_name
from linebreak.hooks.run import as_tensor, batches, run_with_cache
from linebreak.probe import manifold
from linebreak.qk import twist
from linebreak.qk.collect import Means
from linebreak.qk.config import QKConfig
from linebreak.qk.maps import HeadQK
from linebreak.qk.result import TopHead, TopOutputs


def _pca(X: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Explained-variance ratios (up to 10) and the projection onto the top ``n`` components of centred rows."""
    p = manifold.pca_spectrum(X, k=max(n, 10))
    return p["ratio"], p["coords"][:, :n]


def top_head(hq: HeadQK, means: Means) -> TopHead:
    """The detailed view of one head (count rows first, then width rows, in both PCAs)."""
    w = hq.weights
    Qm, Km = means.Q[means.slot(w.layer)], means.K[means.slot(w.layer)]
    Q_thru, K_thru = hq.sides.query, hq.sides.key
    both = np.concatenate([Qm - Qm.mean(0), Km - Km.mean(0)])
    thru = np.concatenate([Q_thru - Q_thru.mean(0), K_thru - K_thru.mean(0)])
    return TopHead(name=w.name, layer=w.layer, head=w.head, matrices=hq.matrices, logits=hq.logits,
                   pca_residual=_pca(both, 3)[1], pca_qk=_pca(thru, 3)[1])


def top_head_outputs(model, lay, ids, lab, top: list[tuple[int, int]], cfg: QKConfig) -> TopOutputs:
    """PCA of the top heads' summed outputs, averaged per characters remaining (0..max_remaining)."""
    layers = sorted({L for L, _ in top})
    R = cfg.max_remaining + 1
    ns = np.zeros(R)
    per_head = {lh: np.zeros((R, lay.d_model)) for lh in top}
    z = {L: hook_name("z", L) for L in layers}  # each head's mixed values, before the output projection
    for s, e in batches(len(ids), cfg.batch_size):
        _, cache = run_with_cache(model, as_tensor(ids[s:e]), list(z.values()))
        rem = lab["remaining"][s:e]
        m = lab["query"][s:e] & (rem >= 0) & (rem < R)
        np.add.at(ns, rem[m], 1)
        for L in layers:
            hs = [h for LL, h in top if LL == L]
            outs = head_outputs(model, L, cache[z[L]], hs)
            for h, o in outs.items():
                np.add.at(per_head[(L, h)], rem[m], o.double().numpy()[m])
    keep = ns >= cfg.min_per_value
    values = np.arange(R)[keep]
    summed = sum(per_head.values())[keep] / ns[keep, None]
    ratio, proj = _pca(summed, 3)
    heads_1d = {f"L{L}H{h}": twist.pc1_share(v[keep] / ns[keep, None]) for (L, h), v in per_head.items()}
    return TopOutputs(remaining=values, explained_variance_ratio=ratio[:6], top2=float(ratio[:2].sum()), pcs=proj,
                      per_head_pc1=heads_1d)
