"""Every head's QK circuit applied to the two sides: query maps, mean logits, and the twist numbers per head.

A head scores a key with ``q . k`` where ``q = x W_Q + b_Q`` and ``k = x W_K + b_K``. In a rotary model (Llama,
NeoX) it scores the key ``Δ`` tokens back with ``(R_Δ q) . k``, and ``Δ`` (tokens since the newline) grows
with the count; judging such a head at offset 0 would judge a matrix it never applies. So the query side of
a rotary head is the mean over the tokens of count ``i`` of ``R_Δ (x W_Q + b_Q)``, each token rotated by its
own offset to the previous newline (:func:`rotated_query_map`); without rotary it is the plain per-count mean
through the map (:func:`linebreak.qk.twist.plain_query_map`).

:func:`score_heads` takes every head through its own weights: the three cosine matrices and their verdict
(:func:`linebreak.qk.twist.head_summary`), and the head's mean attention logits on the (count, width) grid
(:func:`mean_logits`) split into count effect, width effect and interaction
(:func:`linebreak.qk.twist.score_decomposition`): how much of the head's real comparison the cosine test sees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from linebreak.hooks import arch
from linebreak.qk import twist
from linebreak.qk.collect import Means, Sums
from linebreak.qk.result import Comparison, HeadTwist
from linebreak.results import from_dict

QueryMap = Callable[..., np.ndarray]  # map(W, b=None) -> [counts, d_head]


def rotated_query_map(S: np.ndarray, n: np.ndarray, tables) -> QueryMap:
    """Per-count query vectors of a rotary head as it scores the previous newline: the mean over tokens of
    ``R_offset (x W_Q + b_Q)``, from per-(count, offset) sums ``S [counts, offsets, d]`` and counts
    ``n [counts, offsets]``. Returns ``map(W, b) -> [counts, d_head]`` for :func:`linebreak.qk.twist.head_summary`."""
    ci, oi = np.nonzero(n)
    rows, n_rows, n_c = S[ci, oi], n[ci, oi], n.sum(1)

    def query_map(W, b=None):
        M = rows @ W + (0.0 if b is None else n_rows[:, None] * np.asarray(b, dtype=np.float64))
        R = arch.rotate_by_offset(M, oi, tables)
        out = np.zeros((len(n), R.shape[1]))
        np.add.at(out, ci, R)
        return out / n_c[:, None]

    return query_map


def query_map(S_layer: np.ndarray, n: np.ndarray, values: np.ndarray, Q_means: np.ndarray, tables) -> QueryMap:
    """The query side of one layer as :func:`linebreak.qk.twist.head_summary` takes it: rotated to the previous
    newline (:func:`rotated_query_map`) when the model is rotary (``tables`` given), else the plain means."""
    if tables is None:
        return twist.plain_query_map(Q_means)
    return rotated_query_map(S_layer[values], n[values], tables)


def mean_logits(qmap: QueryMap, K_means: np.ndarray, W_Q, b_Q, W_K, b_K) -> np.ndarray:
    """``S[i, k]``: the head's mean attention logit (scaled by ``1/sqrt(d_head)``, biases in) from a query token
    at count ``i`` onto a newline key of width ``k``; ``qmap`` gives the queries as the head sees them (rotated
    to the newline in a rotary model). The logit is linear in each side, so the mean over all such (query, key)
    pairs is the logit of the two means."""
    return qmap(W_Q, b_Q) @ (K_means @ W_K + b_K).T / np.sqrt(W_Q.shape[1])


@dataclass(frozen=True)
class HeadWeights:
    """One head's query and key weights in TL layout (float64): ``q = x @ W_Q + b_Q``, ``k = x @ W_K + b_K``
    (a bias may be None: no bias)."""
    layer: int
    head: int
    W_Q: np.ndarray
    b_Q: np.ndarray | None
    W_K: np.ndarray
    b_K: np.ndarray | None = None

    @property
    def name(self) -> str:
        return f"L{self.layer}H{self.head}"


@dataclass
class HeadQK:
    """One head's QK circuit on the means: its weights, its query map, the three cosine matrices (``qk``,
    ``identity``, ``control``), its mean logits ``S [I, K]``, its twist numbers and their logit split."""
    weights: HeadWeights
    qmap: QueryMap
    matrices: dict[str, np.ndarray]
    logits: np.ndarray
    twist: HeadTwist
    comparison: Comparison


def score_heads(model, lay, sums: Sums, means: Means, tables, rng: np.random.Generator) -> list[HeadQK]:
    """Every head through its own ``W_Q`` / ``W_K``, in (layer, head) order; each head's random control draws
    from ``rng`` in that order."""
    out = []
    for L in range(lay.n_layers):
        W_Q, b_Q, W_K, b_K = (t.double().numpy() for t in arch.qk_weights(model, L))
        qmap = query_map(sums.q_sum[L], sums.q_n, means.i_values, means.Q[L], tables)
        for h in range(lay.n_heads):
            summary, mats = twist.head_summary(means.Q[L], means.K[L], means.i_values, means.k_values, W_Q[h],
                                               W_K[h], rng, query_map=qmap, b_Q=b_Q[h])
            S = mean_logits(qmap, means.K[L], W_Q[h], b_Q[h], W_K[h], b_K[h])
            split = twist.score_decomposition(S, means.i_values, means.k_values)
            out.append(HeadQK(HeadWeights(L, h, W_Q[h], b_Q[h], W_K[h], b_K[h]), qmap, mats, S,
                              from_dict(HeadTwist, summary), from_dict(Comparison, split)))
    return out
