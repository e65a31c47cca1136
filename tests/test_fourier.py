"""The shared Fourier module on signals built with known frequencies."""

import numpy as np
import pytest

from linebreak import fourier as fr


def _signal(n, freqs, d=5, seed=0, noise=0.0, mean=0.0):
    """[n, d] signal: random amplitude/phase per (frequency, dim), plus optional noise and a constant."""
    rng = np.random.default_rng(seed)
    x = np.arange(n)[:, None]
    X = np.full((n, d), mean, dtype=float)
    for k in freqs:
        a, ph = rng.uniform(1, 2, d), rng.uniform(0, 2 * np.pi, d)
        X += a * np.cos(2 * np.pi * k * x / n + ph)
    return X + noise * rng.standard_normal((n, d))


@pytest.mark.parametrize("n", [1, 2, 3, 8, 40, 113])
def test_basis_is_orthonormal_with_labels(n):
    F, labels = fr.fourier_basis(n)
    assert F.shape == (n, n) and len(labels) == n
    np.testing.assert_allclose(F @ F.T, np.eye(n), atol=1e-10)
    assert labels[0] == "const" and np.allclose(F[0], 1 / np.sqrt(n))
    ks = fr.basis_frequencies(n)
    assert len(ks) == n and ks.max() == n // 2
    if n % 2 == 0 and n > 2:
        assert labels[-1] == f"cos {n // 2}" and f"sin {n // 2}" not in labels


def test_basis_rows_match_cos_sin():
    F, labels = fr.fourier_basis(13)
    x = np.arange(13)
    i = labels.index("sin 4")
    v = np.sin(2 * np.pi * 4 * x / 13)
    np.testing.assert_allclose(F[i], v / np.linalg.norm(v))


@pytest.mark.parametrize("n,freqs", [(113, [14, 35, 41]), (40, [1, 3]), (60, [7, 30]), (59, [2, 9, 19, 29])])
def test_power_and_key_frequencies_recover_built_frequencies(n, freqs):
    X = _signal(n, freqs, noise=0.05, mean=3.0)
    p = fr.frequency_power(X)
    assert p.shape == (n // 2 + 1,)
    assert p.sum() == pytest.approx(1.0) and p[0] == pytest.approx(0.0, abs=1e-12)
    assert p[freqs].sum() > 0.98
    assert sorted(fr.key_frequencies(p)) == sorted(freqs)
    assert sorted(fr.key_frequencies(p, coverage=0.95)) == sorted(freqs)
    assert len(fr.key_frequencies(p, max_keys=1)) == 1


def test_key_frequencies_of_noise_are_few_and_strongest_first():
    X = np.random.default_rng(1).standard_normal((113, 128))
    assert len(fr.key_frequencies(fr.frequency_power(X))) == 0
    p = np.zeros(20)
    p[[3, 7]] = [0.3, 0.7]
    assert fr.key_frequencies(p) == [7, 3]


def test_uncentred_power_counts_the_mean_and_constant_signal_has_no_power():
    X = _signal(16, [2], mean=10.0)
    assert fr.frequency_power(X, center=False)[0] > 0.9
    assert np.all(fr.frequency_power(np.full((16, 3), 5.0)) == 0)
    assert fr.key_frequencies(fr.frequency_power(np.zeros((16, 3)))) == []


def test_project_and_remove_split_the_signal():
    n = 30
    A, B = _signal(n, [2, 5], seed=2), _signal(n, [9], seed=3)
    X = A + B + 4.0
    np.testing.assert_allclose(fr.project_frequencies(X, [2, 5]), A, atol=1e-10)
    np.testing.assert_allclose(fr.remove_frequencies(X, [2, 5]), B + 4.0, atol=1e-10)
    np.testing.assert_allclose(fr.project_frequencies(X, [9], include_constant=True), B + 4.0, atol=1e-10)
    # works on trailing axes of any shape, and projection is idempotent
    Y = X.reshape(n, 5, 1)
    P = fr.project_frequencies(Y, [5])
    np.testing.assert_allclose(fr.project_frequencies(P, [5]), P, atol=1e-10)
    with pytest.raises(ValueError):
        fr.project_frequencies(X, [16])
    with pytest.raises(ValueError):
        fr.project_frequencies(X, [1], n=31)


def test_norms_and_gini():
    X = _signal(21, [4], d=8)
    norms = fr.frequency_norms(X)
    assert np.argmax(norms) == 4
    np.testing.assert_allclose((norms**2).sum(), (X**2).sum())  # Parseval
    assert fr.component_norms(X).shape == (21,)
    assert fr.gini(np.ones(10)) == pytest.approx(0.0, abs=1e-12)
    assert fr.gini(np.eye(1, 100)[0]) == pytest.approx(1 - 1 / 100)
    assert fr.gini(np.linspace(0, 1, 50)) < fr.gini(np.r_[np.zeros(45), np.ones(5)])


def test_cumulative_variance_fourier_vs_pca():
    n = 64
    X = _signal(n, [1, 3], d=10, seed=4)
    fc = fr.fourier_cumulative_variance(X)
    pc = fr.pca_cumulative_variance(X)
    assert fc[3] == pytest.approx(1.0) and fc[2] < 0.999  # two frequencies = four directions
    assert fr.fourier_cumulative_variance(X, by="frequency")[1] == pytest.approx(1.0)
    assert np.all(pc[: len(fc)] >= fc[: len(pc)] - 1e-9)  # PCA is the rank-m optimum
    # a non-periodic ramp: Fourier needs more directions than PCA (which needs one)
    ramp = np.outer(np.arange(n), np.ones(3)) + 0.0
    assert fr.pca_cumulative_variance(ramp, 1)[0] == pytest.approx(1.0)
    assert fr.fourier_cumulative_variance(ramp, 1)[0] < 0.9
