"""The toy models of Gurnee et al. 2025 (section 7), in plain numpy: where ringing comes from.

Two constructions give an embedding ``E [n, k]`` of the counts 0 .. n-1 that the manifold tools
(:mod:`linebreak.probe.manifold`) and the ringing gate (:mod:`linebreak.probe.ringing`) measure as they
measure a model's centroids:

* **the truncated circulant** (:func:`truncated_kernel`): a narrow similarity kernel ``K[i, j] = g(d(i, j))``
  of width ``w`` (Gaussian in the cyclic distance, a circulant, or in the plain distance ``|i - j|``, a
  Toeplitz kernel, since a line's count does not wrap round), double-centred, and kept to its top-k
  eigenvectors scaled by the square roots of their eigenvalues. A circulant's eigenvectors are Fourier modes
  and its eigenvalues are the kernel's Fourier coefficients, so keeping the top k is a Fourier *low-pass* of
  the narrow peak: the truncated similarity rings like a Dirichlet kernel, and a narrower peak (flatter
  spectrum) rings more within the same k.
* **the sphere simulation** (:func:`sphere_chain`): N points on the unit sphere in R^d, in order along the
  count; each attracts its neighbours within ``w`` (``0 < |i - j| <= w``, springs) and repels every other
  point (Coulomb, ``1 / |x_i - x_j|``), by projected gradient descent from a seeded start. The paper says a
  smaller ``w`` or more dimensions give more rings; what this version does is measured in docs/toys.md.

Why it matters (issue 19): a peaked match over a wide range needs a similarity that is narrow against the
range, and under a dimension budget a narrow similarity can only be had with ripples; the argument predicts
more of them as range / peak width grows. The centred low-pass ripples *below* zero, so its lobes show in
``ringing.ripples`` before they show as sign changes.
"""

from __future__ import annotations

import numpy as np

from linebreak.io import UserError
from linebreak.probe import manifold


def _check(n: int, w: float, k: int | None = None) -> None:
    if int(n) != n or n < 4:
        raise UserError(f"toy models need at least 4 counts, got n = {n!r}")
    if not np.isfinite(w) or w <= 0:
        raise UserError(f"the kernel width w must be a positive number, got {w!r}")
    if k is not None and (int(k) != k or not 1 <= k < n):
        raise UserError(f"k must be an integer in 1 .. n - 1 = {n - 1}, got {k!r}")


def kernel(n: int, w: float, cyclic: bool = True) -> np.ndarray:
    """``K [n, n]``: a Gaussian of width ``w`` in the cyclic distance ``min(|i-j|, n-|i-j|)`` (a circulant)
    or, with ``cyclic=False``, in the plain distance ``|i - j|`` (a Toeplitz kernel over counts 0 .. n-1)."""
    _check(n, w)
    i = np.arange(n)
    d = np.abs(i[:, None] - i[None, :])
    if cyclic:
        d = np.minimum(d, n - d)
    return np.exp(-0.5 * (d / w) ** 2)


def truncated_kernel(n: int, w: float, k: int, cyclic: bool = True) -> dict:
    """The top-k embedding of the double-centred kernel: ``embedding [n, k]`` (eigenvectors times the square
    roots of their eigenvalues, largest first), so ``embedding @ embedding.T`` is the rank-k truncation of
    ``H K H``; also ``eigenvalues`` (all n, largest first, as shares of the positive ones: a wide Gaussian in
    the cyclic distance is not positive definite, and a negative mode is never part of an embedding) and
    ``kernel``.

    Centring removes the constant mode (for a positive kernel the largest), as the manifold tools centre
    centroids. For the circulant the modes come in cos / sin pairs of equal eigenvalue; an odd k keeps one
    member of the last pair (which one is arbitrary)."""
    _check(n, w, k)
    K = kernel(n, w, cyclic)
    H = np.eye(n) - 1.0 / n
    vals, vecs = np.linalg.eigh(H @ K @ H)
    order = np.argsort(-vals, kind="stable")
    vals, vecs = vals[order], vecs[:, order]
    vecs = vecs * np.where(vecs[np.argmax(np.abs(vecs), axis=0), np.arange(n)] < 0, -1.0, 1.0)  # fixed signs
    E = vecs[:, :k] * np.sqrt(np.maximum(vals[:k], 0.0))
    return {"embedding": E, "eigenvalues": vals / vals[vals > 0].sum(), "kernel": K}


def lowpass_row(n: int, w: float, k: int) -> np.ndarray:
    """Row 0 of the circulant truncated to its lowest frequencies 1 .. k // 2 (by FFT, not eigenvectors): what
    :func:`truncated_kernel`'s Gram matrix must equal if truncation is a Fourier low-pass (even k)."""
    _check(n, w, k)
    spec = np.fft.rfft(kernel(n, w, True)[0])
    spec[0] = 0.0
    spec[k // 2 + 1:] = 0.0
    return np.fft.irfft(spec, n)


def _sphere_grad(X: np.ndarray, near: np.ndarray, far: np.ndarray, repel: float) -> tuple[np.ndarray, float]:
    """Energy ``sum_near |x_i - x_j|^2 / 2 + repel * sum_far 1 / |x_i - x_j|`` (over pairs) and its gradient."""
    dist = np.sqrt(np.maximum(2.0 - 2.0 * (X @ X.T), 1e-12))  # rows are unit vectors: |x_i - x_j|^2 = 2 - 2 x_i.x_j
    energy = 0.25 * (near * dist ** 2).sum() + 0.5 * repel * (far / dist).sum()
    coef = near - repel * far / dist ** 3  # the gradient is sum_j coef_ij (x_i - x_j)
    return coef.sum(1)[:, None] * X - coef @ X, float(energy)


def sphere_chain(n: int = 100, d: int = 6, w: int = 6, steps: int = 1500, lr: float = 0.02,
                 repel: float | None = None, init_noise: float = 0.3, seed: int = 0) -> dict:
    """The sphere simulation: ``n`` points on the unit sphere in R^d, attracting neighbours ``0 < |i-j| <= w``
    and repelling all others (Coulomb, strength ``repel``; default ``2 w / n`` so that the pull of the 2w
    neighbours and the push of the rest stay in balance as n and w change). The defaults are the paper's
    (100 points, 6 neighbours either side, R^6). Projected gradient descent (a step against the gradient's
    tangent part, at most 0.1 per point, then back onto the sphere) starts from the count on half a great
    circle (the bent ramp trained models show) plus seeded Gaussian noise of size ``init_noise``. Returns
    ``points [n, d]``, the ``energy`` every 10 steps and the settings. Same seed, same result.

    The energy has many near-equal minima for small w: different seeds give the same energy to a few
    parts in a thousand but different ripple counts, so compare settings over several seeds."""
    if int(d) != d or not 2 <= d <= 64:
        raise UserError(f"the sphere simulation needs 2 <= d <= 64 dimensions, got d = {d!r}")
    if int(w) != w or not 1 <= w < n - 1:
        raise UserError(f"the attracting range w must be an integer in 1 .. n - 2, got w = {w!r}")
    if int(steps) != steps or steps < 1 or not lr > 0 or not init_noise >= 0:
        raise UserError(f"steps must be a positive integer, lr positive and init_noise >= 0, got steps={steps!r}, "
                        f"lr={lr!r}, init_noise={init_noise!r}")
    _check(n, w)
    repel = 2.0 * w / n if repel is None else float(repel)
    rng = np.random.default_rng(seed)
    t = np.pi * np.arange(n) / n  # an ordered start (half a great circle, the count on an arc) plus seeded noise
    X = np.zeros((n, d))
    X[:, 0], X[:, 1] = np.cos(t), np.sin(t)
    X = X + init_noise * rng.normal(size=(n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    gap = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
    near, far = ((gap > 0) & (gap <= w)).astype(float), (gap > w).astype(float)
    energies = []
    for step in range(int(steps)):
        g, e = _sphere_grad(X, near, far, repel)
        g -= (g * X).sum(1, keepdims=True) * X  # tangent part: the projected gradient
        step_len = lr * np.linalg.norm(g, axis=1, keepdims=True)
        X = X - lr * g * np.minimum(1.0, 0.1 / np.maximum(step_len, 1e-12))  # no point moves more than 0.1
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        if step % 10 == 0:
            energies.append(e)
    return {"points": X, "energy": np.asarray(energies), "n": int(n), "d": int(d), "w": int(w),
            "repel": repel, "steps": int(steps), "seed": int(seed)}


def measure(E: np.ndarray, k: int = 10) -> dict:
    """What the manifold tools read from a toy embedding (rows in count order): the PC spectrum, the cosine
    matrix, its peak width and ungated ringing, Fourier against PCA, the helix fit, and the gated ringing of
    :mod:`linebreak.probe.ringing`, so toys, models and controls go through one measurement. An embedding
    with fewer than ``k`` dimensions is padded with zero columns (which changes no distance or cosine) so
    that every spectrum has its ``k`` entries, as a model's centroids in d_model dimensions do."""
    from linebreak.probe import ringing as gate

    E = np.asarray(E, dtype=np.float64)
    if E.ndim != 2 or len(E) < 4 or not np.isfinite(E).all():
        raise UserError(f"a toy embedding must be a finite [counts >= 4, dims] array, got shape {E.shape}")
    P = np.pad(E, ((0, 0), (0, max(0, min(k, len(E) - 1) - E.shape[1]))))
    cos = manifold.cosine_matrix(P)
    pca = manifold.pca_spectrum(P, k)
    fvp = manifold.fourier_vs_pca(P, k)
    helix = manifold.helix_fit(P, np.arange(len(P)), max_periods=2)
    return {"pca_ratio": pca["ratio"], "top3": pca["top3"], "top6": pca["top6"], "dim95": pca["dim95"],
            "coords": pca["coords"][:, :3], "cos": cos, "peak_width": manifold.peak_width(cos),
            "ungated": manifold.ringing(cos), "fourier_cum": fvp["fourier_cum"], "pca_cum": fvp["pca_cum"],
            "gap_6": fvp["gap_6"], "key_frequencies": fvp["key_frequencies"], "helix_periods": helix["periods"],
            "helix_r2": helix["r2_helix"], "gated": gate.gated_ringing(P)}
