"""What each head's attention measurably does: response curves and the key-side comparison test.

The cosine verdict reads the weights; these read the attention pattern the model computed (from
:func:`linebreak.qk.collect.collect`), from every word token to its most recent previous newline:

- the *response curve*: that attention averaged per characters remaining (``width - count``). A boundary head
  switches on (or off) near the limit; its curve's range says how much (:func:`response_range` orders heads by
  it, here and in the causal stage);
- the *key-side comparison test* (:func:`key_side_test`): holding the width and the count fixed, does the
  attention move with the length of the line the newline ended? A head that compares the count with the key's
  own length must; a head gated by the query's own remaining-count estimate need not. Its thresholds are in
  :mod:`linebreak.rules.qk`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linebreak.qk.collect import newline_queries
from linebreak.qk.config import QKConfig
from linebreak.qk.result import HeadSummary, KeySide, Response
from linebreak.rules.qk import KEY_SIDE_MAX_P, KEY_SIDE_MIN_EXCESS, KEY_SIDE_MIN_GROUP, KEY_SIDE_SHUFFLES


def binned(x: np.ndarray, y: np.ndarray, values: np.ndarray, min_n: int) -> np.ndarray:
    """Mean of ``y`` per value of ``x`` (values with fewer than ``min_n`` points are nan)."""
    out = np.full(len(values), np.nan)
    for j, v in enumerate(values):
        m = x == v
        if m.sum() >= min_n:
            out[j] = y[m].mean()
    return out


def response_curve(att_h: np.ndarray, remaining: np.ndarray, values: np.ndarray, min_n: int) -> Response:
    """One head's attention to the previous newline per characters remaining, its range, peak and Spearman
    correlation with characters remaining (the sign gives the polarity)."""
    curve = binned(remaining, att_h, values, min_n)
    ok = np.isfinite(curve)
    rho = float("nan")
    if ok.sum() >= 3:
        from scipy.stats import spearmanr

        rho = float(spearmanr(values[ok], curve[ok]).statistic)
    return Response(remaining=values, attention=curve,
                    range=float(np.nanmax(curve) - np.nanmin(curve)) if ok.any() else float("nan"),
                    peak_remaining=int(values[np.nanargmax(curve)]) if ok.any() else None,
                    spearman_vs_remaining=rho)


def response_range(head: HeadSummary) -> float:
    """How far a head's attention to the previous newline moves across characters remaining (its response
    curve's range); -1 where it was not measured (nan), so such heads sort last."""
    r = head.response.range
    return -1.0 if r is None or not np.isfinite(r) else float(r)


def _groups(width: np.ndarray, count: np.ndarray, min_group: int) -> tuple[np.ndarray, np.ndarray]:
    """Each token's (width, count) group index and whether its group has at least ``min_group`` tokens."""
    groups = width.astype(np.int64) * 100003 + count.astype(np.int64)
    _, inv, n = np.unique(groups, return_inverse=True, return_counts=True)
    return inv, n[inv] >= min_group


def shuffle_draws(width: np.ndarray, count: np.ndarray, min_group: int = KEY_SIDE_MIN_GROUP,
                  n_shuffles: int = KEY_SIDE_SHUFFLES) -> int:
    """How many uniform draws :func:`key_side_test` takes from its generator on these tokens: one per kept token
    and shuffle, none when fewer than 3 are kept. The groups do not depend on the attention, so every head
    takes the same number: a head not analysed is skipped by advancing the generator that far (each float64
    uniform is one raw 64-bit draw)."""
    n = int(_groups(width, count, min_group)[1].sum())
    return n * n_shuffles if n >= 3 else 0


def key_side_test(attn: np.ndarray, width: np.ndarray, count: np.ndarray, prev_len: np.ndarray,
                  rng: np.random.Generator, min_group: int = KEY_SIDE_MIN_GROUP,
                  n_shuffles: int = KEY_SIDE_SHUFFLES) -> KeySide:
    """Does attention to the previous newline move with that line's length when width and count are fixed?

    Within each (width, count) group, ``attn`` and ``prev_len`` are centred; ``corr`` is the pooled
    correlation (the monotone part); ``eta2`` the share of the within-group attention variance explained by
    the previous line's length taken as categories (any shape of dependence, e.g. a bump). Small cells make
    ``eta2`` large by chance, so its null is measured: the lengths are permuted within groups
    ``n_shuffles`` times; ``eta2_shuffled`` is the mean and ``excess`` = ``eta2 - eta2_shuffled``;
    ``p_value`` the share of shuffles (plus the observed) with ``eta2`` at least as large. ``moves`` when
    ``excess >= KEY_SIDE_MIN_EXCESS`` and ``p_value <= KEY_SIDE_MAX_P``.
    """
    nan = float("nan")
    inv, keep = _groups(width, count, min_group)
    if keep.sum() < 3:
        return KeySide(corr=nan, eta2=nan, eta2_shuffled=nan, excess=nan, p_value=nan, moves=False,
                       n=int(keep.sum()))
    a, k = attn[keep], prev_len[keep].astype(np.int64)
    g = np.unique(inv[keep], return_inverse=True)[1]

    def demean(v):
        return v - (np.bincount(g, v) / np.bincount(g))[g]

    a_c, k_c = demean(a), demean(k.astype(float))
    denom = np.sqrt((a_c**2).sum() * (k_c**2).sum())
    corr = float((a_c * k_c).sum() / denom) if denom > 0 else nan
    tot = float((a_c**2).sum())

    def eta2(kk):
        cell = g * (int(k.max()) + 2) + kk
        _, ci = np.unique(cell, return_inverse=True)
        cm = (np.bincount(ci, a_c) / np.bincount(ci))[ci]
        return float((cm**2).sum() / tot) if tot > 0 else nan

    # permute lengths within groups: both orders list the groups alike, so pairing them shuffles within
    by_group = np.argsort(g, kind="stable")
    null = np.empty(n_shuffles)
    for j in range(n_shuffles):
        shuffled = np.empty_like(k)
        shuffled[by_group] = k[np.lexsort((rng.random(len(g)), g))]
        null[j] = eta2(shuffled)
    e = eta2(k)
    excess = e - float(null.mean())
    p = float((1 + (null >= e).sum()) / (1 + n_shuffles))
    return KeySide(corr=corr, eta2=e, eta2_shuffled=float(null.mean()), excess=excess, p_value=p,
                   moves=bool(excess >= KEY_SIDE_MIN_EXCESS and p <= KEY_SIDE_MAX_P), n=int(keep.sum()))


@dataclass
class Measured:
    """One head's measured attention: its response curve and its key-side test."""
    response: Response
    key_side: KeySide


def measure_heads(att: dict[int, np.ndarray], lab: dict, lay, cfg: QKConfig,
                  rng: np.random.Generator) -> dict[tuple[int, int], Measured]:
    """Response curve and key-side test of every head of the analysed layers, by ``(layer, head)``, from
    ``att`` (per analysed layer, the attention of each query token with a previous newline to it
    ``[tokens, n_heads]``, in the order of :func:`linebreak.qk.collect.collect`). The shuffles draw from ``rng``
    in the order of all the model's heads (``lay``); the heads of a layer not analysed are jumped over
    (:func:`shuffle_draws`), so a head gets the same shuffles whichever layers are analysed."""
    b, t = np.nonzero(newline_queries(lab))
    remaining, width, count = lab["remaining"][b, t], lab["width"][b, t], lab["count"][b, t]
    prev_len = lab["line_len"][b, lab["prev_nl"][b, t]]
    rem_values = np.arange(0, cfg.max_remaining + 1)
    skip = lay.n_heads * shuffle_draws(width, count)
    out = {}
    for L in range(lay.n_layers):
        if L not in att:
            rng.bit_generator.advance(skip)
            continue
        for h in range(lay.n_heads):
            a = att[L][:, h]
            out[(L, h)] = Measured(response_curve(a, remaining, rem_values, cfg.min_per_value),
                                   key_side_test(a, width, count, prev_len, rng))
    return out
