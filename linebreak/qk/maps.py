"""Every head's QK circuit applied to the two sides: query maps, mean logits, and the twist numbers per head.

A head scores a key with ``q . k / divisor`` where ``q = x W_Q + b_Q`` and ``k = x W_K + b_K`` (``divisor`` from
the attention module's own scaling, :func:`linebreak.hooks.arch.score_divisor`). In a rotary model (every
family but GPT-2) it scores the key ``Δ`` tokens back with ``(R_Δ q) . k``, and ``Δ`` (tokens since the
newline) grows with the count; judging such a head at offset 0 would judge a matrix it never applies. So the
query side of a rotary head is the mean over the tokens of count ``i`` of ``R_Δ (x W_Q + b_Q)``, each token
rotated by its own offset to the previous newline (:func:`rotated_query_map`); without rotary it is the plain
per-count mean through the map (:func:`linebreak.qk.twist.plain_query_map`).

A q/k-norm head (Qwen3, Gemma-3, OLMo-2) scores ``norm(q) . norm(k)``, and the norm is not linear: the mean of
``x W_Q`` over a count's tokens, normed, is not the mean of the normed queries. Its two sides are therefore
the per-value means of the head's own normed queries (rotated to the newline token by token, as above) and
keys, read from the forward pass (:class:`linebreak.qk.collect.Sums` ``qn_sum`` / ``kn_sum``), and the head's
map is the identity on them: the cosines, the offsets, the mean logits and their split all go through
unchanged (:func:`head_sides`). Its identity matrix and random control stay on the residual sides (a random
control is a random *linear* head on what attention reads).

:func:`score_heads` takes every head through its own weights: the three cosine matrices and their verdict
(:func:`linebreak.qk.twist.head_summary`), and the head's mean attention logits on the (count, width) grid
(:func:`mean_logits`) split into count effect, width effect and interaction
(:func:`linebreak.qk.twist.score_decomposition`): how much of the head's real comparison the cosine test sees.
The logits are before any soft cap (Gemma-2's ``c tanh(s / c)``, monotone in ``s``).
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

QueryMap = Callable[..., np.ndarray]  # map(W=None, b=None) -> [counts, d_head]; W None: the identity map
Tables = dict | None  # the model's rotary tables by analysed layer (arch.rotary_tables), None without rotary


def rotated_query_map(S: np.ndarray, n: np.ndarray, tables) -> QueryMap:
    """Per-count query vectors of a rotary head as it scores the previous newline: the mean over tokens of
    ``R_offset (x W_Q + b_Q)``, from per-(count, offset) sums ``S [counts, offsets, d]`` and counts
    ``n [counts, offsets]``. Returns ``map(W, b) -> [counts, d_head]`` for :func:`linebreak.qk.twist.head_summary`;
    ``W = None`` rotates the summed vectors themselves (sums of a head's own normed queries)."""
    ci, oi = np.nonzero(n)
    rows, n_rows, n_c = S[ci, oi], n[ci, oi], n.sum(1)

    def query_map(W=None, b=None):
        M = rows if W is None else rows @ W + (0.0 if b is None else n_rows[:, None] * np.asarray(b, dtype=np.float64))
        R = arch.rotate_by_offset(M, oi, tables)
        out = np.zeros((len(n), R.shape[1]))
        np.add.at(out, ci, R)
        return out / n_c[:, None]

    return query_map


def query_map(S_layer: np.ndarray, n: np.ndarray, values: np.ndarray, Q_means: np.ndarray, tables) -> QueryMap:
    """The query side of one layer as :func:`linebreak.qk.twist.head_summary` takes it: rotated to the previous
    newline (:func:`rotated_query_map`) when the model is rotary (``tables``: that layer's), else the plain
    means."""
    if tables is None:
        return twist.plain_query_map(Q_means)
    return rotated_query_map(S_layer[values], n[values], tables)


@dataclass(frozen=True)
class HeadWeights:
    """One head's query and key weights in TL layout (float64): ``q = x @ W_Q + b_Q``, ``k = x @ W_K + b_K``
    (a bias may be None: no bias). On a q/k-norm model they are the projections before the norm (the random
    control's shape and size); the head's sides come from its normed queries and keys."""
    layer: int
    head: int
    W_Q: np.ndarray
    b_Q: np.ndarray | None
    W_K: np.ndarray
    b_K: np.ndarray | None = None

    @property
    def name(self) -> str:
        return f"L{self.layer}H{self.head}"


@dataclass(frozen=True)
class Sides:
    """One head's two sides as it compares them, per count and per key value: ``query [I, d_head]`` (rotated to
    the newline in a rotary model), ``key [K, d_head]`` (what the cosines compare: a constant bias cancels in
    their centring) and ``key_logit`` (the key with its bias: what the logit uses)."""
    query: np.ndarray
    key: np.ndarray
    key_logit: np.ndarray


def head_sides(qmap: QueryMap, sums: Sums, w: HeadWeights, i_values, k_values, K_means: np.ndarray,
               tables) -> Sides:
    """Head ``w``'s sides over counts ``i_values`` and key values ``k_values``. Linear heads: the residual
    sides through its maps (``qmap(W_Q, b_Q)``, ``K_means @ W_K`` + ``b_K``). A q/k-norm model (``sums.normed``):
    the per-value means of the head's own normed queries (rotated to the newline with that layer's
    ``tables``) and keys, the head's map being the identity on them."""
    if not sums.normed:
        K = K_means @ w.W_K
        return Sides(qmap(w.W_Q, w.b_Q), K, K + (0.0 if w.b_K is None else w.b_K))
    j, h = sums.slot(w.layer), w.head
    S, n = sums.qn_sum[j][:, :, h, :], sums.q_n
    Q = (S[i_values].sum(1) / n[i_values].sum(1)[:, None] if tables is None
         else rotated_query_map(S[i_values], n[i_values], tables)())
    K = sums.kn_sum[j][k_values, h] / sums.k_n[k_values][:, None]
    return Sides(Q, K, K)


def mean_logits(sides: Sides, divisor: float) -> np.ndarray:
    """``S[i, k]``: the head's mean attention logit (``q . k / divisor``, biases in, before any soft cap) from a
    query token at count ``i`` onto a newline key of width ``k``; ``sides`` are the queries and keys as the head
    sees them (rotated to the newline in a rotary model). The logit is linear in each side, so the mean over
    all such (query, key) pairs is the logit of the two means."""
    return sides.query @ sides.key_logit.T / divisor


@dataclass
class HeadQK:
    """One head's QK circuit on the means: its weights, its residual query map, its two sides, the three cosine
    matrices (``qk``, ``identity``, ``control``), its mean logits ``S [I, K]``, its twist numbers and their
    logit split."""
    weights: HeadWeights
    qmap: QueryMap
    sides: Sides
    matrices: dict[str, np.ndarray]
    logits: np.ndarray
    twist: HeadTwist
    comparison: Comparison


def layer_tables(tables: Tables, layer: int):
    """That layer's rotary tables, or None without rotary."""
    return None if tables is None else tables[layer]


def analysed(sums: Sums, lay) -> tuple[int, ...]:
    """The model layers ``sums`` holds (every layer of ``lay`` when it does not say)."""
    return tuple(range(lay.n_layers)) if sums.layers is None else sums.layers


def score_heads(model, lay, sums: Sums, means: Means, tables: Tables, rng: np.random.Generator) -> list[HeadQK]:
    """Every head of the analysed layers (``sums.layers``) through its own ``W_Q`` / ``W_K`` (or, with q/k
    norms, its own normed sides), in (layer, head) order. Each head's random control draws from ``rng`` in the
    order of all the model's heads: the heads of a layer not analysed draw theirs and drop them
    (:func:`linebreak.qk.twist.skip_controls`), so a head gets the same control whichever layers are analysed."""
    out = []
    layers = analysed(sums, lay)
    for L in range(lay.n_layers):
        if L not in layers:
            twist.skip_controls(lay.n_heads, (lay.d_model, lay.d_head), rng)
            continue
        j = sums.slot(L)
        W_Q, b_Q, W_K, b_K = (t.double().numpy() for t in arch.qk_weights(model, L))
        t = layer_tables(tables, L)
        qmap = query_map(sums.q_sum[j], sums.q_n, means.i_values, means.Q[j], t)
        divisor = arch.score_divisor(model, L)
        for h in range(lay.n_heads):
            w = HeadWeights(L, h, W_Q[h], b_Q[h], W_K[h], b_K[h])
            sides = head_sides(qmap, sums, w, means.i_values, means.k_values, means.K[j], t)
            summary, mats = twist.head_summary(means.Q[j], means.K[j], means.i_values, means.k_values, W_Q[h],
                                               W_K[h], rng, query_map=qmap, b_Q=b_Q[h],
                                               through=(sides.query, sides.key))
            S = mean_logits(sides, divisor)
            split = twist.score_decomposition(S, means.i_values, means.k_values)
            out.append(HeadQK(w, qmap, sides, mats, S, from_dict(HeadTwist, summary), from_dict(Comparison, split)))
    return out
