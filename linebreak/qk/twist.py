"""The QK twist test: does a head's query-key map line count ``i`` up with width ``k = i + eps``?

Gurnee et al. (2025) multiply count representations through a boundary head's ``W_Q`` and width
representations through its ``W_K`` and compare them by cosine similarity. In the raw residual stream the
best match is on the diagonal ``k = i`` with a low cosine (about 0.25); through a boundary head it moves off
the diagonal to ``k = i + eps`` with a cosine near 1; a random head shows no structure. This module is that
computation on plain arrays, with no model in sight:

- :func:`twist_matrix` — cosine matrix ``cos[i, k]`` between (centred) query-side and key-side vectors,
  each optionally mapped through a ``[d, d_head]`` matrix (``None`` = the identity map);
- :func:`argmax_offsets` — the per-row best width ``k*(i)``, offsets ``eps(i) = k*(i) - i``, their median
  and spread, and a linear fit of ``k*`` on ``i``;
- :func:`random_like` — a seeded Gaussian matrix of the same shape and norm (the control);
  :func:`skip_controls` draws and drops the controls of heads not analysed, so the others keep theirs;
- :func:`pc1_share` — how close one side is to a straight ramp (the share of its first principal component);
- :func:`score_decomposition` — how a head compares count with width: its attention logits on the (count,
  width) grid split into an additive part (a count effect plus a width effect: subtraction on ramps) and
  the interaction that a twist needs;
- :func:`head_summary`, :func:`twist_score`, :func:`head_verdict` — one head's numbers, its ranking score,
  and the pass/fail verdict whose thresholds live in :mod:`linebreak.rules.qk` (documented in docs/qk.md).

Centring. The vectors on each side are centred on their own mean over values before mapping. Because the
map is linear, centring before or after it is the same, and the bias ``b_Q``/``b_K`` (a constant added to
every query or key) cancels; so the cosine measures how the *value-dependent* part of the query lines up
with the value-dependent part of the key. (Uncentred, every vector shares the mean direction and all
cosines crowd towards one number.)

A caution the numbers must be read with: if both sides lie on straight lines (1-D ramps), the centred
vectors are ``+-u`` and every cosine is ``+-c`` — a two-block matrix whose row argmax is arbitrary. A high
maximum cosine alone therefore proves nothing; the verdict also asks for a clean, unit-slope offset line
that does not sit at the edge of the width range, and for a gain over the identity map and the control.
"""

from __future__ import annotations

import numpy as np

from linebreak.fourier import pca_cumulative_variance
from linebreak.rules.qk import MAX_EDGE_FRACTION, MIN_GAIN, MIN_MAX_COS, MIN_R2, OFFSET_RANGE, SLOPE_RANGE


def _centre(X: np.ndarray) -> np.ndarray:
    return X - X.mean(axis=0, keepdims=True)


def _unit_rows(X: np.ndarray, scale: float) -> np.ndarray:
    """Rows scaled to unit length; rows shorter than ``1e-9 * scale`` (rounding noise of vectors that do not
    vary, e.g. every newline's embedding in a rotary model's first layer) become zero, not random unit rows."""
    n = np.linalg.norm(X, axis=1, keepdims=True)
    tiny = n <= 1e-9 * max(scale, 1e-300)
    return np.where(tiny, 0.0, X / np.where(tiny, 1.0, n))


def twist_matrix(Q_side: np.ndarray, K_side: np.ndarray, W_Q: np.ndarray | None = None,
                 W_K: np.ndarray | None = None, centre: bool = True) -> np.ndarray:
    """Cosine similarity ``cos[i, k]`` between ``Q_side[i] @ W_Q`` and ``K_side[k] @ W_K``.

    ``Q_side [I, d]`` (e.g. per-count means or count probes), ``K_side [K, d]`` (per-width means or probes);
    ``W_Q``/``W_K`` ``[d, d_head]`` or ``None`` for the identity map (then both sides must share ``d``).
    """
    Q, K = np.asarray(Q_side, dtype=np.float64), np.asarray(K_side, dtype=np.float64)
    if W_Q is not None:
        Q = Q @ np.asarray(W_Q, dtype=np.float64)
    if W_K is not None:
        K = K @ np.asarray(W_K, dtype=np.float64)
    if Q.shape[1] != K.shape[1]:
        raise ValueError(f"query side has dimension {Q.shape[1]}, key side {K.shape[1]}")
    # the size of the uncentred vectors after the map: what "numerically zero" is measured against
    scale_q, scale_k = float(np.abs(Q).max(initial=0.0)), float(np.abs(K).max(initial=0.0))
    if centre:  # after the map, which is linear: the same as centring before it
        Q, K = _centre(Q), _centre(K)
    return _unit_rows(Q, scale_q) @ _unit_rows(K, scale_k).T


def _linfit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares ``y = slope x + intercept`` and its R^2 (nan when undefined)."""
    if len(x) < 2 or np.ptp(x) == 0:
        return float("nan"), float("nan"), float("nan")
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    ss = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss if ss > 0 else float("nan")
    return float(slope), float(intercept), r2


def argmax_offsets(cos: np.ndarray, i_values: np.ndarray, k_values: np.ndarray,
                   rows: np.ndarray | None = None) -> dict:
    """Per-row best width and the offset line of a twist matrix.

    ``rows`` (bool mask over ``i_values``) selects the rows that enter the statistics; by default the counts
    inside the width range (a count beyond every width has no width to line up with).
    Returns ``k_star [I]``, ``offsets [I]`` (``k*(i) - i``), ``rows`` (the mask used), ``median``,
    ``spread`` (interquartile range), ``slope``, ``intercept``, ``r2`` (fit of ``k*`` on ``i``), ``max_cos``
    (over the whole matrix), ``alignment`` (mean over used rows of the row maximum) and ``edge_fraction``
    (used rows whose argmax is the first or last width).
    """
    cos = np.asarray(cos, dtype=np.float64)
    i_values, k_values = np.asarray(i_values, dtype=np.float64), np.asarray(k_values, dtype=np.float64)
    if cos.shape != (len(i_values), len(k_values)):
        raise ValueError(f"cos is {cos.shape}, expected {(len(i_values), len(k_values))}")
    if rows is None:
        rows = (i_values >= k_values.min()) & (i_values <= k_values.max())
    rows = np.asarray(rows, dtype=bool)
    arg = cos.argmax(axis=1)
    k_star = k_values[arg]
    offsets = k_star - i_values
    x, y = i_values[rows], k_star[rows]
    slope, intercept, r2 = _linfit(x, y)
    used = offsets[rows]
    edge = (arg[rows] == 0) | (arg[rows] == len(k_values) - 1)
    nan = float("nan")
    return {
        "k_star": k_star, "offsets": offsets, "rows": rows,
        "median": float(np.median(used)) if used.size else nan,
        "spread": float(np.subtract(*np.percentile(used, [75, 25]))) if used.size else nan,
        "slope": slope, "intercept": intercept, "r2": r2,
        "max_cos": float(cos.max()),
        "alignment": float(cos[rows].max(axis=1).mean()) if rows.any() else nan,
        "edge_fraction": float(edge.mean()) if edge.size else nan,
        "n_rows": int(rows.sum()),
    }


def random_like(W: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A Gaussian matrix of ``W``'s shape scaled to ``W``'s Frobenius norm (the random-map control)."""
    R = rng.standard_normal(np.shape(W))
    return R * (np.linalg.norm(W) / max(np.linalg.norm(R), 1e-12))


def skip_controls(n_heads: int, shape: tuple[int, int], rng: np.random.Generator) -> None:
    """Draw and drop the random controls of ``n_heads`` heads whose ``W_Q`` and ``W_K`` have ``shape`` (what
    :func:`head_summary` draws for each: one Gaussian matrix for ``W_Q``, then one for ``W_K``), so that the heads
    after them get the same controls whether these are judged or not (``--layers``). The draws are made, not
    jumped over: a standard normal takes a varying number of raw draws."""
    for _ in range(2 * n_heads):
        rng.standard_normal(shape)


SUMMARY_KEYS = ("max_cos", "alignment", "median", "spread", "slope", "intercept", "r2", "edge_fraction")


def _brief(stats: dict) -> dict:
    return {k: stats[k] for k in SUMMARY_KEYS}


def plain_query_map(Q_side):
    """``map(W, b) -> Q_side @ W + b``: the query side through a map when position does not enter (no rotary),
    as the head sees it (``W=None``: the identity map). The bias adds the same vector to every row, so the
    centred cosines do not see it; the head's logits do (``b=None``: no bias, as for the random control)."""
    Q = np.asarray(Q_side, dtype=np.float64)

    def query_map(W=None, b=None):
        M = Q if W is None else Q @ np.asarray(W, dtype=np.float64)
        return M + (0.0 if b is None else np.asarray(b, dtype=np.float64))

    return query_map


def pc1_share(X: np.ndarray) -> float:
    """Share of the variance of the (centred) rows along their first principal component. Near 1 the side is a
    straight ramp, and no linear map can line a ramp up with another at an interior offset: a twist needs
    both sides curved through the head's maps (nan when the rows do not vary)."""
    share = float(pca_cumulative_variance(X, 1)[0])  # 0 exactly when the rows do not vary
    return share if share > 0 else float("nan")


def two_way_parts(S: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """``S[i, k] = mu + a[i] + b[k] + inter[i, k]``: grand mean, row effects, column effects, interaction."""
    S = np.asarray(S, dtype=np.float64)
    mu = float(S.mean())
    a, b = S.mean(axis=1) - mu, S.mean(axis=0) - mu
    return mu, a, b, S - mu - a[:, None] - b[None, :]


def score_decomposition(S: np.ndarray, i_values: np.ndarray, k_values: np.ndarray) -> dict:
    """How a head compares count ``i`` with width ``k``: its logits ``S [I, K]`` split by two-way ANOVA.

    ``S[i, k] = mu + a_i + b_k + I_ik``: ``a`` (count effect) and ``b`` (width effect) are the row and column
    means less the grand mean ``mu``; the rest ``I`` is the *interaction*, the only part that depends on the
    pair. A twist in the paper's sense (``S ~ cos(theta_i - theta_k + phi)`` on a curve, peaked at
    ``k = i + eps``) is all interaction; a head that compares by subtraction on ramps (``S ~ alpha (i - k)``,
    a query that grows with the count against a key that grows with the width, through the biases) is all
    additive, and its centred cosines are a two-block +-1 pattern. ``I`` is exactly the dot product of the
    centred query and key vectors, the matrix the cosine test normalises, so ``interaction_share`` says how
    much of the head's real score variation the twist test looks at.

    Returns the variance shares (``interaction_share``, ``count_share``, ``width_share``; they sum to 1),
    the logit ranges of each part, the linear fits of ``a`` on ``i`` and ``b`` on ``k`` (``count_slope``,
    ``width_slope`` in logits per character, with R^2) and ``balance = -width_slope / count_slope``, which is
    1 when the additive part depends on ``k - i`` alone (characters remaining, computed by subtraction).
    """
    S = np.asarray(S, dtype=np.float64)
    i_values, k_values = np.asarray(i_values, dtype=np.float64), np.asarray(k_values, dtype=np.float64)
    if S.shape != (len(i_values), len(k_values)):
        raise ValueError(f"S is {S.shape}, expected {(len(i_values), len(k_values))}")
    mu, a, b, inter = two_way_parts(S)
    parts = {"count": (a**2).sum() * len(k_values), "width": (b**2).sum() * len(i_values),
             "interaction": (inter**2).sum()}
    total = sum(parts.values())
    nan = float("nan")
    shares = {f"{k}_share": float(v / total) if total > 0 else nan for k, v in parts.items()}
    cs, _, cr2 = _linfit(i_values, a)
    ws, _, wr2 = _linfit(k_values, b)
    return {**shares, "count_slope": cs, "count_r2": cr2, "width_slope": ws, "width_r2": wr2,
            "balance": -ws / cs if np.isfinite(cs) and cs != 0 else nan,
            "range": {"count": float(np.ptp(a)), "width": float(np.ptp(b)), "interaction": float(np.ptp(inter)),
                      "total": float(np.ptp(S))}}


def head_summary(Q_side, K_side, i_values, k_values, W_Q, W_K, rng: np.random.Generator,
                 query_map=None, b_Q=None, through=None) -> dict:
    """One head's three matrices (``qk``: through the head; ``identity``; ``control``: random maps of the same
    shape and norm) and their statistics, gains, ranking score and verdict. Returns (summary, matrices).

    ``query_map(W, b)`` gives the query-side vectors through a map ``W`` (with the head's bias ``b_Q``;
    ``None`` for the control); by default :func:`plain_query_map` of ``Q_side``. A rotary model's query is
    rotated by its offset to the key before the dot product, so its per-count query vectors depend on more
    than the means (see :mod:`linebreak.qk.maps`). ``through = (Q_thru, K_thru)`` gives the head's two sides
    directly (a q/k-norm head's own normed sides, which no matrix maps the residual to); by default
    ``(query_map(W_Q, b_Q), K_side @ W_K)``. The control maps the residual sides either way.
    """
    qmap = query_map or plain_query_map(Q_side)
    K = np.asarray(K_side, dtype=np.float64)
    R_Q, R_K = random_like(W_Q, rng), random_like(W_K, rng)
    Q_thru, K_thru = through if through is not None else (qmap(W_Q, b_Q), K @ W_K)
    mats = {"qk": twist_matrix(Q_thru, K_thru),
            "identity": twist_matrix(Q_side, K_side),
            "control": twist_matrix(qmap(R_Q, None), K @ R_K)}
    stats = {name: argmax_offsets(m, i_values, k_values) for name, m in mats.items()}
    out = {name: _brief(s) for name, s in stats.items()}
    out["offsets"] = stats["qk"]["offsets"]
    out["k_star"] = stats["qk"]["k_star"]
    out["pc1_share"] = {"query": pc1_share(Q_thru), "key": pc1_share(K_thru)}
    out["gain_over_identity"] = stats["qk"]["alignment"] - stats["identity"]["alignment"]
    out["gain_over_control"] = stats["qk"]["alignment"] - stats["control"]["alignment"]
    out["score"] = twist_score(out)
    out["verdict"] = head_verdict(out)
    out["control_verdict"] = line_checks(out["control"])
    return out, mats


def finite(x) -> float:
    """``x`` as a float, 0 where it is undefined (None or NaN): an undefined number never passes a check."""
    return float(x) if x is not None and np.isfinite(x) else 0.0


def twist_score(summary: dict) -> float:
    """Ranking score: alignment gain over the identity map times the consistency of the offset line.

    ``max(0, gain) * r2 * (1 - edge_fraction)`` — zero for a head that aligns no better than the raw
    residual stream, or whose per-row argmax does not follow a line, or sits on the edge of the range.
    """
    h = summary["qk"]
    return (max(0.0, finite(summary["gain_over_identity"])) * max(0.0, finite(h["r2"]))
            * (1.0 - finite(h["edge_fraction"])))


def line_checks(stats: dict) -> dict:
    """The criteria on one matrix's own statistics: a high cosine on a clean, unit-slope line just above
    the diagonal that is not pinned to the edge of the width range. ``passes`` when all hold."""
    checks = {
        "max_cos": finite(stats["max_cos"]) >= MIN_MAX_COS,
        "slope": SLOPE_RANGE[0] <= finite(stats["slope"]) <= SLOPE_RANGE[1],
        "r2": finite(stats["r2"]) >= MIN_R2,
        "offset_small_positive": OFFSET_RANGE[0] <= finite(stats["median"]) <= OFFSET_RANGE[1],
        "not_pinned_to_edge": finite(stats["edge_fraction"]) <= MAX_EDGE_FRACTION,
    }
    return {"passes": all(checks.values()), "checks": checks}


def head_verdict(summary: dict) -> dict:
    """Does this head's QK twist line count up with the limit? The line criteria of :func:`line_checks`
    on the head's matrix, plus a clear alignment gain over the identity map and over the random control."""
    checks = dict(line_checks(summary["qk"])["checks"])
    checks["beats_identity"] = finite(summary["gain_over_identity"]) >= MIN_GAIN
    checks["beats_control"] = finite(summary["gain_over_control"]) >= MIN_GAIN
    return {"passes": all(checks.values()), "checks": checks}


def thresholds() -> dict:
    """The verdict thresholds, for the JSON (so a result says what it was judged against)."""
    return {"min_max_cos": MIN_MAX_COS, "slope_range": list(SLOPE_RANGE), "min_r2": MIN_R2,
            "offset_range": list(OFFSET_RANGE), "max_edge_fraction": MAX_EDGE_FRACTION, "min_gain": MIN_GAIN}
