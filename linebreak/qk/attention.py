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


@dataclass(frozen=True)
class KeySideNull:
    """The tokens a key-side test keeps and the within-group shuffles its null is measured on.

    Within each (width, count) group of at least ``min_group`` tokens (``keep``; ``g`` the group of each kept
    token), the previous line's length ``k`` takes categories; ``order`` lists the kept tokens cell by cell
    (group, then length) and ``starts`` where each cell begins in it, ``n`` its size. A shuffle permutes the
    lengths within groups; with the lengths of shuffle ``j`` the cells hold the tokens ``gather[j]`` (in cell
    order), so a cell sum is a segment sum of the attention gathered there. The shuffles depend on the tokens
    alone, not on the attention, so one null serves every head of a model: each head is tested against the
    same permutations, and which layers are analysed does not change them. With fewer than 3 kept tokens there
    is nothing to test: ``keep`` alone is set."""
    keep: np.ndarray
    g: np.ndarray | None = None
    k: np.ndarray | None = None
    order: np.ndarray | None = None
    starts: np.ndarray | None = None
    n: np.ndarray | None = None
    gather: np.ndarray | None = None  # [n_shuffles, kept tokens]


def key_side_null(width: np.ndarray, count: np.ndarray, prev_len: np.ndarray, rng: np.random.Generator,
                  min_group: int = KEY_SIDE_MIN_GROUP, n_shuffles: int = KEY_SIDE_SHUFFLES) -> KeySideNull:
    """The shuffles of :func:`key_side_test` on these tokens (one uniform draw per kept token and shuffle, from
    ``rng``; none when fewer than 3 tokens sit in groups of ``min_group``)."""
    inv, keep = _groups(width, count, min_group)
    if keep.sum() < 3:
        return KeySideNull(keep)
    k = prev_len[keep].astype(np.int64)
    g = np.unique(inv[keep], return_inverse=True)[1]
    order = np.lexsort((k, g))
    new_cell = np.r_[True, (np.diff(g[order]) != 0) | (np.diff(k[order]) != 0)]
    starts = np.flatnonzero(new_cell)
    # shuffle j gives token by_group[i] the length of token perm[i] (both list the groups alike, so the pairing
    # stays within groups); the cell of length v in group G then sums the attention a[by_group[i]] over the i
    # with k[perm[i]] = v: the observed cells of b, where b[perm] = a[by_group]
    by_group = np.argsort(g, kind="stable")
    draws = rng.random((n_shuffles, len(g)))
    gather = np.empty((n_shuffles, len(g)), dtype=np.int64)
    for j in range(n_shuffles):
        idx = np.empty(len(g), dtype=np.int64)
        idx[np.lexsort((draws[j], g))] = by_group
        gather[j] = idx[order]
    return KeySideNull(keep=keep, g=g, k=k, order=order, starts=starts, n=np.diff(np.r_[starts, len(g)]),
                       gather=gather)


def key_side_tests(attn: np.ndarray, null: KeySideNull) -> list[KeySide]:
    """Does attention to the previous newline move with that line's length when width and count are fixed?
    One :class:`KeySide` per column of ``attn [tokens, heads]``, every head against the same ``null``
    (:func:`key_side_null` of these tokens).

    Within each (width, count) group, the attention and ``prev_len`` are centred; ``corr`` is the pooled
    correlation (the monotone part); ``eta2`` the share of the within-group attention variance explained by
    the previous line's length taken as categories (any shape of dependence, e.g. a bump). Small cells make
    ``eta2`` large by chance, so its null is measured: the lengths are permuted within groups (the null's
    shuffles); ``eta2_shuffled`` is the mean and ``excess`` = ``eta2 - eta2_shuffled``; ``p_value`` the share
    of shuffles (plus the observed) with ``eta2`` at least as large. ``moves`` when
    ``excess >= KEY_SIDE_MIN_EXCESS`` and ``p_value <= KEY_SIDE_MAX_P``.
    """
    nan = float("nan")
    if null.gather is None:
        return [KeySide(corr=nan, eta2=nan, eta2_shuffled=nan, excess=nan, p_value=nan, moves=False,
                        n=int(null.keep.sum())) for _ in range(attn.shape[1])]
    # heads on rows, tokens contiguous: every reduction runs along one head's own row, in the same order
    # whichever other heads are stacked beside it
    a, g, m = np.ascontiguousarray(attn[null.keep].T, dtype=np.float64), null.g, len(null.g)
    per_group = np.bincount(g)
    a_c = a - np.stack([np.bincount(g, row) / per_group for row in a])[:, g]
    kf = null.k.astype(np.float64)
    k_c = kf - (np.bincount(g, kf) / per_group)[g]
    tot = (a_c ** 2).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (a_c * k_c).sum(1) / np.sqrt(tot * (k_c ** 2).sum())

        def eta2(rows):  # [heads]: the between-cell share of the centred attention, cells of the given rows
            S = np.add.reduceat(a_c[:, rows], null.starts, axis=1)
            return (S ** 2 / null.n).sum(1) / tot

        e = eta2(null.order)
        nulls = np.stack([eta2(rows) for rows in null.gather])  # [shuffles, heads]
    out = []
    for h in range(len(a)):
        if not tot[h] > 0:  # attention that does not vary within groups: nothing to explain
            out.append(KeySide(corr=nan, eta2=nan, eta2_shuffled=nan, excess=nan, p_value=nan, moves=False, n=m))
            continue
        shuffled = float(nulls[:, h].mean())
        excess = float(e[h]) - shuffled
        p = float((1 + (nulls[:, h] >= e[h]).sum()) / (1 + len(nulls)))
        out.append(KeySide(corr=float(corr[h]) if np.isfinite(corr[h]) else nan, eta2=float(e[h]),
                           eta2_shuffled=shuffled, excess=excess, p_value=p,
                           moves=bool(excess >= KEY_SIDE_MIN_EXCESS and p <= KEY_SIDE_MAX_P), n=m))
    return out


def key_side_test(attn: np.ndarray, width: np.ndarray, count: np.ndarray, prev_len: np.ndarray,
                  rng: np.random.Generator, min_group: int = KEY_SIDE_MIN_GROUP,
                  n_shuffles: int = KEY_SIDE_SHUFFLES) -> KeySide:
    """:func:`key_side_tests` of one head's attention ``attn [tokens]``, its shuffles drawn from ``rng``."""
    null = key_side_null(width, count, prev_len, rng, min_group, n_shuffles)
    return key_side_tests(attn[:, None], null)[0]


@dataclass
class Measured:
    """One head's measured attention: its response curve and its key-side test."""
    response: Response
    key_side: KeySide


def measure_heads(att: dict[int, np.ndarray], lab: dict, cfg: QKConfig,
                  rng: np.random.Generator) -> dict[tuple[int, int], Measured]:
    """Response curve and key-side test of every head of the analysed layers, by ``(layer, head)``, from
    ``att`` (per analysed layer, the attention of each query token with a previous newline to it
    ``[tokens, n_heads]``, in the order of :func:`linebreak.qk.collect.collect`). The key-side shuffles are
    drawn once from ``rng`` and every head is tested against them (:class:`KeySideNull`)."""
    b, t = np.nonzero(newline_queries(lab))
    remaining, width, count = lab["remaining"][b, t], lab["width"][b, t], lab["count"][b, t]
    prev_len = lab["line_len"][b, lab["prev_nl"][b, t]]
    rem_values = np.arange(0, cfg.max_remaining + 1)
    null = key_side_null(width, count, prev_len, rng)
    out = {}
    for L, a in att.items():
        for h, side in enumerate(key_side_tests(a, null)):
            out[(L, h)] = Measured(response_curve(a[:, h], remaining, rem_values, cfg.min_per_value), side)
    return out
