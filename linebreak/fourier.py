"""The discrete Fourier basis over Z_n, spectra, key frequencies, and projections (numpy only).

One small module serves both the mod-P grokking reference (Nanda et al. 2023, where the embedding and the
neurons of a grokked model live on a few frequencies w_k = 2*pi*k/P) and the line-width study (the Fourier
spectrum of per-count mean activations along the count axis).

Conventions, as in Nanda's code:

* :func:`fourier_basis` returns an orthonormal real basis ``F [n, n]`` whose *rows* are basis vectors: the
  constant, then ``cos_k``, ``sin_k`` for k = 1 .. n//2. For even n the Nyquist ``sin`` is identically zero
  and is dropped, so there are exactly n rows. ``F @ x`` are the Fourier coefficients of a signal ``x [n]``;
  ``F.T @ c`` inverts them.
* Every function acts along **axis 0** of an array ``X [n, ...]`` (the cyclic axis: the residue, or the
  count); any trailing axes (model dims, neurons) are summed over when a power is reported.
* A *frequency* k (0 .. n//2) owns one basis row (k = 0, or Nyquist) or two (cos_k, sin_k).

Key frequencies are always found from the data (a power threshold relative to a flat spectrum, or the
smallest set covering a share of the variance), never hard-coded.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def fourier_basis(n: int) -> tuple[np.ndarray, list[str]]:
    """Orthonormal real basis over Z_n: rows ``[const, cos_1, sin_1, cos_2, sin_2, ...]`` and labels."""
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    n = int(n)
    x = np.arange(n)
    rows, labels = [np.ones(n)], ["const"]
    for k in range(1, n // 2 + 1):
        rows.append(np.cos(2 * np.pi * k * x / n))
        labels.append(f"cos {k}")
        if 2 * k != n:  # sin at the Nyquist frequency is all zeros
            rows.append(np.sin(2 * np.pi * k * x / n))
            labels.append(f"sin {k}")
    F = np.stack(rows)
    F /= np.linalg.norm(F, axis=1, keepdims=True)
    return F, labels


def basis_frequencies(n: int) -> np.ndarray:
    """The frequency k of each row of ``fourier_basis(n)`` (``[n]`` ints: 0, 1, 1, 2, 2, ...)."""
    ks = [0]
    for k in range(1, n // 2 + 1):
        ks += [k] if 2 * k == n else [k, k]
    return np.asarray(ks)


def fourier_transform(X: np.ndarray) -> np.ndarray:
    """Fourier coefficients of ``X`` along axis 0 (``F @ X``; same shape as ``X``)."""
    X = np.asarray(X, dtype=np.float64)
    F, _ = fourier_basis(X.shape[0])
    return np.tensordot(F, X, axes=(1, 0))


def component_norms(X: np.ndarray) -> np.ndarray:
    """Norm of each Fourier component of ``X [n, ...]`` over the trailing axes (``[n]``; Nanda's W_E plot)."""
    C = fourier_transform(X)
    return np.sqrt((C.reshape(C.shape[0], -1) ** 2).sum(axis=1))


def frequency_norms(X: np.ndarray) -> np.ndarray:
    """Norm per frequency k = 0 .. n//2 (cos_k and sin_k combined) of ``X [n, ...]``."""
    sq = component_norms(X) ** 2
    return np.sqrt(np.bincount(basis_frequencies(len(sq)), weights=sq))


def frequency_power(X: np.ndarray, center: bool = True) -> np.ndarray:
    """Share of the variance of ``X [n, ...]`` at each frequency k = 0 .. n//2 (sums to 1).

    With ``center`` the mean over axis 0 is removed first, so ``power[0] == 0`` and the shares are of the
    variance along the cyclic axis. An all-constant (or all-zero) signal has no variance: all zeros returned.
    """
    X = np.asarray(X, dtype=np.float64)
    energy = float((X**2).sum())
    if center:
        X = X - X.mean(axis=0, keepdims=True)
    p = frequency_norms(X) ** 2
    total = p.sum()
    return p / total if total > 1e-20 * energy and total > 0 else np.zeros_like(p)


def key_frequencies(power: np.ndarray, ratio: float = 3.0, coverage: float | None = None,
                    max_keys: int | None = None) -> list[int]:
    """Frequencies k >= 1 that carry the signal, strongest first, from ``power`` (:func:`frequency_power`).

    * default: every k whose power share exceeds ``ratio`` times the flat-spectrum share 1/(n//2). A random
      signal yields few or none; a signal built on a few frequencies yields exactly those.
    * ``coverage``: instead, the smallest set (strongest first) whose shares sum to at least ``coverage`` of
      the non-constant power.
    ``max_keys`` caps the list. k = 0 (the mean) is never a key frequency.
    """
    power = np.asarray(power, dtype=np.float64)
    p = power[1:]
    total = p.sum()
    if len(p) == 0 or total <= 0:
        return []
    order = np.argsort(-p, kind="stable")
    if coverage is not None:
        if not 0 < coverage <= 1:
            raise ValueError(f"coverage must be in (0, 1], got {coverage}")
        m = int(np.searchsorted(np.cumsum(p[order]) / total, coverage - 1e-12) + 1)
        keys = order[:m]
    else:
        keys = [i for i in order if p[i] / total > ratio / len(p)]
    out = [int(i) + 1 for i in keys]
    return out[:max_keys] if max_keys is not None else out


def _selector(n: int, freqs: Iterable[int], include_constant: bool) -> np.ndarray:
    F, _ = fourier_basis(n)
    ks = basis_frequencies(n)
    freqs = {int(k) for k in freqs}
    bad = [k for k in freqs if not 0 <= k <= n // 2]
    if bad:
        raise ValueError(f"frequencies {sorted(bad)} are outside 0..{n // 2} for n = {n}")
    if include_constant:
        freqs.add(0)
    return F[np.isin(ks, sorted(freqs))]


def project_frequencies(X: np.ndarray, freqs: Iterable[int], n: int | None = None,
                        include_constant: bool = False) -> np.ndarray:
    """The part of ``X [n, ...]`` that lies on ``freqs`` (cos_k and sin_k), along axis 0.

    ``include_constant`` also keeps the mean (frequency 0). ``n`` defaults to ``X.shape[0]`` and, if given,
    must match it.
    """
    X = np.asarray(X, dtype=np.float64)
    if n is not None and n != X.shape[0]:
        raise ValueError(f"axis 0 of X has length {X.shape[0]}, expected n = {n}")
    S = _selector(X.shape[0], freqs, include_constant)
    return np.tensordot(S.T, np.tensordot(S, X, axes=(1, 0)), axes=(1, 0))


def remove_frequencies(X: np.ndarray, freqs: Iterable[int], n: int | None = None) -> np.ndarray:
    """``X`` with the components at ``freqs`` removed along axis 0 (``X - project_frequencies(X, freqs)``)."""
    X = np.asarray(X, dtype=np.float64)
    return X - project_frequencies(X, freqs, n)


def fourier_cumulative_variance(X: np.ndarray, m_max: int | None = None, by: str = "component") -> np.ndarray:
    """Share of the centred variance of ``X [n, d]`` explained by its top-m Fourier parts, m = 1 .. m_max.

    ``by="component"`` ranks single basis rows (cos_k and sin_k separately), so entry m-1 is the best rank-m
    approximation that uses m Fourier directions along axis 0: directly comparable with
    :func:`pca_cumulative_variance` (PCA's top-m is the optimum over *all* rank-m approximations, so it is
    always at least as large; the gap says how far from Fourier-shaped the signal is). ``by="frequency"``
    ranks whole frequencies (two directions each).
    """
    X = np.asarray(X, dtype=np.float64)
    X = (X - X.mean(axis=0, keepdims=True)).reshape(X.shape[0], -1)
    if by == "component":
        p = component_norms(X)[1:] ** 2
    elif by == "frequency":
        p = frequency_norms(X)[1:] ** 2
    else:
        raise ValueError(f"by must be 'component' or 'frequency', got {by!r}")
    total = p.sum()
    cum = np.cumsum(np.sort(p)[::-1]) / total if total > 0 else np.zeros(len(p))
    return cum[:m_max] if m_max is not None else cum


def pca_cumulative_variance(X: np.ndarray, m_max: int | None = None) -> np.ndarray:
    """Share of the centred variance of ``X [n, d]`` explained by its top-m principal components."""
    X = np.asarray(X, dtype=np.float64)
    X = (X - X.mean(axis=0, keepdims=True)).reshape(X.shape[0], -1)
    s2 = np.linalg.svd(X, compute_uv=False) ** 2
    total = s2.sum()
    cum = np.cumsum(s2) / total if total > 0 else np.zeros(len(s2))
    return cum[:m_max] if m_max is not None else cum


def gini(x: np.ndarray) -> float:
    """Hurley-Rickard Gini coefficient of non-negative values (0 = spread evenly, -> 1 = all on one)."""
    c = np.sort(np.abs(np.asarray(x, dtype=np.float64).ravel()))
    N, s = len(c), c.sum()
    if N == 0 or s <= 0:
        return 0.0
    k = np.arange(1, N + 1)
    return float(1 - 2 * np.sum((c / s) * (N - k + 0.5) / N))
