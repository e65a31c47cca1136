"""The geometry of the character-count representation: centroids, PCA, ringing, Fourier and helix fits.

Following Gurnee et al. 2025 (section 2): average the activations of tokens at each character count c to
get one centroid per count (a curve through activation space), then ask

* how many dimensions it spans (:func:`pca_spectrum`: variance in the top 3 / 6 / 10 PCs);
* whether it *rings* (:func:`ringing`): the cosine similarity between counts is positive near the diagonal,
  negative further out and positive again — the signature of a curve that winds (a helix), not of a line;
* how Fourier-shaped it is along the count axis (:func:`fourier_vs_pca`, using :mod:`linebreak.fourier`);
* whether a helix fits it (:func:`helix_fit`, Kantamneni & Tegmark 2025: regress the centroids on
  ``[c, cos(2 pi c / T), sin(2 pi c / T)]`` for chosen periods T);
* how sharply a count is resolved (:func:`peak_width`: width of the similarity peak, per layer).

A straight line gives one sign change and no positive second lobe; a helix of period T gives sign changes
every T/2 counts. All functions take plain numpy arrays; nothing here knows about models.
"""

from __future__ import annotations

import numpy as np

from linebreak.groups import group_means
from linebreak.io import UserError


def word_rows(labels: dict) -> np.ndarray:
    """Tokens whose count reflects counting: space-prefixed word tokens (not line-initial, not newline,
    not ``<bos>``). Line-initial tokens form their own cluster and would swamp PC1."""
    tl = np.asarray(labels["token_len"])
    rows = (tl > 0) & (np.asarray(labels["count"]) > tl) & ~np.asarray(labels["is_newline"], dtype=bool)
    return rows & ~np.asarray(labels["over_long"], dtype=bool) if "over_long" in labels else rows


def subtract_token_mean(X: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """``X`` with each token identity's mean replaced by the global mean (removes what the token *is*)."""
    X = np.asarray(X, dtype=np.float64)
    inv = np.unique(tokens, return_inverse=True)[1]
    return X - group_means(X, inv, inv.max() + 1)[inv] + X.mean(0)


def centroids(X, values, min_per_value: int = 20, contiguous: bool = True,
              min_values: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Mean activation per label value: ``(values [V], C [V, d])``.

    Values seen fewer than ``min_per_value`` times are dropped; with ``contiguous`` only the longest run of
    consecutive integer values that all pass is kept (the count axis must have no holes for Fourier and
    ringing). Fewer than ``min_values`` values left is a :class:`UserError` (too few tokens per count).
    """
    X = np.asarray(X, dtype=np.float64)
    uniq, inv, ok = kept_values(values, min_per_value, contiguous, min_values)
    return uniq[ok], group_means(X, inv, len(uniq))[ok]


def kept_values(values, min_per_value: int = 20, contiguous: bool = True,
                min_values: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which label values :func:`centroids` keeps: ``(unique values, each row's index into them, kept mask)``,
    by the rule :func:`centroids` states (at least ``min_per_value`` rows; with ``contiguous`` the longest run of
    consecutive values; at least ``min_values`` values, else a :class:`UserError`)."""
    uniq, inv, n = np.unique(np.asarray(values), return_inverse=True, return_counts=True)
    ok = n >= min_per_value
    if contiguous and ok.any():
        best, start = (0, 0), None
        for i in range(len(uniq) + 1):
            run = i < len(uniq) and ok[i] and (start is None or uniq[i] == uniq[i - 1] + 1)
            if run and start is None:
                start = i
            elif not run and start is not None:
                best = max(best, (i - start, start))
                start = i if i < len(uniq) and ok[i] else None
        keep = np.zeros_like(ok)
        keep[best[1]:best[1] + best[0]] = True
        ok = keep
    if ok.sum() < min_values:
        raise UserError(f"too few tokens per value for centroids: {int(ok.sum())} values have "
                        f">= {min_per_value} tokens (need {min_values}); capture more tokens or lower "
                        "min_per_value")
    return uniq, inv, ok


def pca_spectrum(C: np.ndarray, k: int = 10) -> dict:
    """PCA of the centroids: variance ratios, top-3/6/10 shares, PCs needed for 95 %, coords ``[V, k]``."""
    C = np.asarray(C, dtype=np.float64)
    Cc = C - C.mean(0)
    U, S, Vt = np.linalg.svd(Cc, full_matrices=False)
    var = S ** 2
    ratio = var / var.sum() if var.sum() > 0 else np.zeros_like(var)
    cum = np.cumsum(ratio)

    def top(m):
        return float(cum[min(m, len(cum)) - 1])
    return {"ratio": ratio[:k], "top3": top(3), "top6": top(6), "top10": top(10),
            "dim95": int(np.searchsorted(cum, 0.95 - 1e-12) + 1),
            "coords": (U * S)[:, :k], "components": Vt[:k]}


def cosine_matrix(C: np.ndarray, center: bool = True) -> np.ndarray:
    """Cosine similarity between rows of ``C`` (centred on their mean first, as the paper's means are)."""
    C = np.asarray(C, dtype=np.float64)
    if center:
        C = C - C.mean(0)
    N = C / np.maximum(np.linalg.norm(C, axis=1, keepdims=True), 1e-12)
    return N @ N.T


def lag_profile(cos: np.ndarray) -> np.ndarray:
    """Mean similarity at each lag k = |i - j| (mean of the k-th off-diagonal), k = 0 .. V-1."""
    V = len(cos)
    return np.array([np.diagonal(cos, k).mean() for k in range(V)])


def ringing(cos: np.ndarray, tol: float = 0.02, min_pairs: int = 3) -> dict:
    """Numbers that summarise ringing along the mean similarity-by-lag profile.

    Lags with fewer than ``min_pairs`` pairs are ignored; values within ``tol`` of 0 carry no sign.
    ``first_negative`` is the lowest value of the first negative lobe, ``second_positive`` the highest value
    of the positive lobe after it (0 if none), ``sign_changes`` the number of sign flips (a straight line: 1).
    """
    p = lag_profile(cos)[: max(len(cos) - min_pairs + 1, 1)]
    s = np.where(p > tol, 1, np.where(p < -tol, -1, 0))
    nz = s[s != 0]
    changes = int(np.sum(nz[1:] != nz[:-1]))
    out = {"profile": p, "sign_changes": changes, "first_negative": 0.0, "first_negative_lag": None,
           "second_positive": 0.0, "second_positive_lag": None, "zero_crossing_lag": None}
    neg = np.flatnonzero(s < 0)
    if len(neg):
        a = neg[0]
        out["zero_crossing_lag"] = int(a)
        b = a + (np.flatnonzero(s[a:] > 0)[0] if (s[a:] > 0).any() else len(s) - a)
        out["first_negative_lag"] = int(a + np.argmin(p[a:b]))
        out["first_negative"] = float(p[a:b].min())
        if b < len(s):
            c = b + (np.flatnonzero(s[b:] < 0)[0] if (s[b:] < 0).any() else len(s) - b)
            out["second_positive_lag"] = int(b + np.argmax(p[b:c]))
            out["second_positive"] = float(p[b:c].max())
    return out


def peak_width(cos: np.ndarray, level: float = 0.5) -> float:
    """Full width (in values) of the similarity peak: twice the lag where the lag profile first falls below
    ``level`` (linearly interpolated). Narrower = sharper count resolution."""
    p = lag_profile(cos)
    below = np.flatnonzero(p < level)
    if not len(below):
        return float(2 * (len(p) - 1))
    k = below[0]
    if k == 0:  # not even the diagonal reaches the level (degenerate, e.g. all-zero centroids): no peak
        return 0.0
    frac = (p[k - 1] - level) / (p[k - 1] - p[k])
    return float(2 * (k - 1 + frac))


def fourier_vs_pca(C: np.ndarray, m_max: int = 10) -> dict:
    """Fourier spectrum of the centroid curve along the count axis, beside its PCA spectrum.

    ``fourier_cum[m-1]`` is the variance share captured by the best m Fourier directions along the count
    axis, ``pca_cum[m-1]`` by the top m PCs (always at least as large); ``gap_6`` is their difference at m=6
    (the paper: within 0.10). The count axis is treated as periodic, so a plain ramp leaks into low k.
    """
    from linebreak import fourier

    power = fourier.frequency_power(C)
    V = len(C)
    m = min(m_max, V - 1)
    f = fourier.fourier_cumulative_variance(C, m)
    p = fourier.pca_cumulative_variance(C, m)
    if len(p) < m:  # fewer dimensions than m: the top m PCs already hold all of the variance
        p = np.concatenate([p, np.full(m - len(p), p[-1] if len(p) else 0.0)])
    keys = fourier.key_frequencies(power, max_keys=5)
    return {"power": power, "key_frequencies": keys, "key_periods": [V / k for k in keys],
            "fourier_cum": f, "pca_cum": p, "gap_6": float(p[min(6, m) - 1] - f[min(6, m) - 1])}


def _fit_r2(C: np.ndarray, B: np.ndarray) -> tuple[float, float]:
    """R^2 of the least-squares fit ``C ~ B @ W + b`` over all dimensions, and its adjusted R^2
    (penalised for the ``B.shape[1]`` predictors, so extra periods must beat what noise columns buy)."""
    A = np.column_stack([np.ones(len(B)), B])
    coef, *_ = np.linalg.lstsq(A, C, rcond=None)
    ss_tot = ((C - C.mean(0)) ** 2).sum()
    if ss_tot <= 0:
        return float("nan"), float("nan")
    r2 = 1.0 - float(((C - A @ coef) ** 2).sum()) / ss_tot
    dof = len(C) - B.shape[1] - 1
    return r2, (1 - (1 - r2) * (len(C) - 1) / dof) if dof > 0 else float("-inf")


def _wave(c: np.ndarray, T: float) -> list[np.ndarray]:
    return [np.cos(2 * np.pi * c / T), np.sin(2 * np.pi * c / T)]


def helix_fit(C, counts, periods=None, max_periods: int = 3, min_gain: float = 0.01) -> dict:
    """Fit the centroids with a helix, as Kantamneni & Tegmark (2025) fit numbers.

    Basis ``B(c) = [c, cos(2 pi c/T_1), sin(2 pi c/T_1), ...]``; ``C ~ B(c) @ W + b`` by least squares over
    all dimensions at once. Periods are chosen greedily from ``periods`` (default: every integer from 2 to
    the count span: at least one full turn), each step adding the one that raises the adjusted R^2 most,
    stopping at ``max_periods`` or when that gain is below ``min_gain``. Reports the line-only R^2, the
    helix R^2, and ``residual_drop``: the share of the line's unexplained variance the periods remove.
    """
    C, c = np.asarray(C, dtype=np.float64), np.asarray(counts, dtype=np.float64)
    span = c.max() - c.min() + 1
    cands = list(periods) if periods is not None else list(range(2, int(span) + 1))
    basis, chosen, steps = [(c - c.mean()) / (c.std() + 1e-12)], [], []
    r2_line, adj = _fit_r2(C, basis[0][:, None])
    r2 = r2_line
    for _ in range(max_periods):
        fits = [(_fit_r2(C, np.column_stack(basis + _wave(c, T))), T) for T in cands if T not in chosen]
        if not fits:
            break
        (r2_new, adj_new), T = max(fits, key=lambda f: f[0][1])
        if adj_new - adj < min_gain:
            break
        r2, adj = r2_new, adj_new
        chosen.append(T)
        steps.append(float(r2))
        basis += _wave(c, T)
    drop = 1 - (1 - r2) / (1 - r2_line) if r2_line < 1 else 0.0
    return {"periods": chosen, "r2_steps": steps, "r2_line": float(r2_line), "r2_helix": float(r2),
            "r2_helix_adjusted": float(adj), "residual_drop": float(drop)}


def umap_embedding(X: np.ndarray, n_components: int = 3, n_neighbors: int = 15, seed: int = 0) -> np.ndarray:
    """A seeded UMAP of token activations (a nonlinear view; illustration, not evidence). Imports umap lazily.
    Set ``NUMBA_CACHE_DIR`` to a writable folder: the first call compiles numba code (tens of seconds)."""
    try:
        import umap
    except ImportError:
        raise UserError("the UMAP view needs umap-learn: pip install 'linebreak[umap]'") from None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X = np.asarray(X, dtype=np.float64)
        X = X + np.random.default_rng(seed).normal(0, 1e-6 * (X.std() + 1e-12), X.shape)  # break exact ties
        reducer = umap.UMAP(n_components=n_components, n_neighbors=min(n_neighbors, len(X) - 1),
                            random_state=seed, init="spectral")
        return reducer.fit_transform(X)
