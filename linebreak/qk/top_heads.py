"""A closer look at the top heads: their matrices, both sides in 3-D, and what their outputs carry.

The verdict rests on summary numbers; these details are what the figures draw (:mod:`linebreak.plots.qk`):

- :func:`top_head` — a head's three cosine matrices and mean logits, and the joint PCA of the count means and
  width means, once in the residual stream (what attention reads) and once through the head (its ``W_Q`` /
  ``W_K``, or its own normed queries and keys on a q/k-norm model: the twist made visible);
- :func:`top_head_outputs` — the top heads' outputs (each head's ``z`` through the output projection alone)
  summed per characters remaining, from the sums the qk pass keeps, and reduced by PCA. The paper finds 2 PCs carry
  92 % of the boundary heads' summed output.
"""

from __future__ import annotations

import numpy as np

from linebreak.hooks.measure import head_outputs
from linebreak.probe import manifold
from linebreak.qk import twist
from linebreak.qk.collect import Collected, Means, layer_slot
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


def top_head_outputs(model, data: Collected, top: list[tuple[int, int]], cfg: QKConfig) -> TopOutputs:
    """PCA of the top heads' summed outputs, averaged per characters remaining (0..max_remaining), from the
    per-remaining sums of their mixed values ``z`` that :func:`linebreak.qk.collect.collect` keeps: a head's
    output is its ``z`` through the output projection alone, which is linear, so the sum of its outputs is its
    summed ``z`` through the projection."""
    import torch

    ns = data.z_n
    per_head = {(L, h): head_outputs(model, L, torch.from_numpy(data.z_sum[layer_slot(data.halves.layers, L)]),
                                     [h])[h].double().numpy() for L, h in top}
    keep = ns >= cfg.min_per_value
    values = np.arange(len(ns))[keep]
    summed = sum(per_head.values())[keep] / ns[keep, None]
    ratio, proj = _pca(summed, 3)
    heads_1d = {f"L{L}H{h}": twist.pc1_share(v[keep] / ns[keep, None]) for (L, h), v in per_head.items()}
    return TopOutputs(remaining=values, explained_variance_ratio=ratio[:6], top2=float(ratio[:2].sum()), pcs=proj,
                      per_head_pc1=heads_1d)
