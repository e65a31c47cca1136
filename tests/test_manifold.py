"""Manifold geometry on constructed curves where the answer is known: a helix comes back with its period,
its dimension and its ringing; a straight line shows no ringing and no periodic term."""

import numpy as np
import pytest

from linebreak.io import UserError
from linebreak.probe import manifold as M

COUNTS = np.arange(4, 81)


def embed(B, d=64, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.normal(size=(d, B.shape[1])))[0]
    return B @ Q.T + noise * rng.normal(size=(len(B), d))


def helix(T=12, radius=2.0, c=COUNTS):
    return np.column_stack([(c - c.mean()) / c.std(), radius * np.cos(2 * np.pi * c / T),
                            radius * np.sin(2 * np.pi * c / T)])


@pytest.mark.parametrize("T", [9, 12, 20])
def test_helix_recovers_period_dimension_and_rings(T):
    C = embed(helix(T))
    pca = M.pca_spectrum(C)
    assert pca["dim95"] == 3 and pca["top3"] > 0.99
    fit = M.helix_fit(C, COUNTS)
    assert fit["periods"][0] == T and fit["r2_helix"] > 0.99 and fit["r2_line"] < 0.5
    assert fit["residual_drop"] > 0.95
    r = M.ringing(M.cosine_matrix(C))
    assert r["sign_changes"] >= 4 and r["first_negative"] < -0.3 and r["second_positive"] > 0.5
    assert abs(r["second_positive_lag"] - T) <= 1
    f = M.fourier_vs_pca(C)
    assert abs(f["key_periods"][0] - T) < 0.1 * T


def test_straight_line_has_no_ringing():
    L = embed((COUNTS - COUNTS.mean())[:, None] / 10.0, noise=0.01, seed=1)
    r = M.ringing(M.cosine_matrix(L))
    assert r["sign_changes"] <= 1 and r["second_positive"] == 0.0
    fit = M.helix_fit(L, COUNTS)
    assert fit["periods"] == [] and fit["r2_line"] > 0.99
    assert M.pca_spectrum(L)["dim95"] == 1


def test_peak_width_sharpens_with_a_tighter_curve():
    wide, sharp = M.cosine_matrix(embed(helix(40))), M.cosine_matrix(embed(helix(10)))
    assert M.peak_width(sharp) < M.peak_width(wide)


def test_centroids_means_longest_contiguous_run_and_too_few():
    rng = np.random.default_rng(0)
    values = np.concatenate([np.repeat(np.arange(0, 10), 30), np.repeat([12, 13], 30), [20] * 5])
    X = rng.normal(size=(len(values), 4)) + values[:, None]
    v, C = M.centroids(X, values, min_per_value=20)
    assert list(v) == list(range(10))
    np.testing.assert_allclose(C[3], X[values == 3].mean(0))
    with pytest.raises(UserError, match="too few tokens per value"):
        M.centroids(X, values, min_per_value=31)


def test_subtract_token_mean_removes_identity_offsets():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 5, 2000)
    offsets = rng.normal(size=(5, 3)) * 10
    X = offsets[tokens] + rng.normal(size=(2000, 3))
    Y = M.subtract_token_mean(X, tokens)
    assert np.abs(np.array([Y[tokens == t].mean(0) - Y.mean(0) for t in range(5)])).max() < 1e-9


def test_peak_width_of_degenerate_centroids_is_zero():
    import numpy as np

    from linebreak.probe.manifold import peak_width

    assert peak_width(np.zeros((5, 5))) == 0.0
    assert peak_width(np.eye(5)) == 1.0  # lag profile 1, 0, 0, ...: half-height at lag 0.5


def test_fourier_vs_pca_on_a_curve_of_few_dimensions():
    """A curve in 3 dimensions (fewer than the 6 the gap is read at): the top m >= 3 PCs hold all its variance."""
    n = 40
    t = 2 * np.pi * np.arange(n) / n
    C = np.stack([np.cos(t), np.sin(t), np.linspace(0, 1, n)], axis=1)
    r = M.fourier_vs_pca(C)
    assert len(r["pca_cum"]) == len(r["fourier_cum"]) == 10
    np.testing.assert_allclose(r["pca_cum"][2:], 1.0, rtol=1e-12)
    assert 0 <= r["gap_6"] <= 1
