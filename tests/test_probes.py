"""Probes: a planted linear label is read back on held-out documents, pure-noise labels score near zero,
and per-value logistic probes recover a count with small RMSE."""

import numpy as np
import pytest

from linebreak.io import UserError
from linebreak.probe.estimators import ridge_probe, split_by_group, value_probes


def data(n_docs=60, per_doc=50, d=32, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_docs), per_doc)
    count = rng.integers(1, 40, len(groups))
    direction = rng.normal(size=d)
    X = rng.normal(size=(len(groups), d)) + np.outer(count, direction) / 2
    return X, count, groups


def test_split_is_by_document():
    _, _, groups = data()
    test = split_by_group(groups, 0.25, seed=0)
    assert not set(groups[test]) & set(groups[~test])
    assert len(set(groups[test])) == 15
    np.testing.assert_array_equal(test, split_by_group(groups, 0.25, seed=0))


def test_ridge_reads_a_planted_label():
    X, count, groups = data()
    r = ridge_probe(X, count, groups)
    assert r.r2_test > 0.98 and r.rmse_test < 2
    np.testing.assert_allclose(X @ r.weight + r.bias, count, atol=6)


def test_ridge_on_noise_labels_scores_near_zero():
    X, _, groups = data()
    noise = np.random.default_rng(5).normal(size=len(groups))
    r = ridge_probe(X, noise, groups)
    assert abs(r.r2_test) < 0.05
    assert r.r2_train < 0.05  # 32 features on 2,250 rows cannot fit noise


def test_value_probes_recover_count():
    X, count, groups = data(d=16)
    vp = value_probes(X, count, groups, keep=np.arange(5, 35), max_iter=100)
    assert vp.weights.shape == (30, 16) and list(vp.values) == list(range(5, 35))
    assert vp.rmse_test < 4
    noise = np.random.default_rng(1).integers(5, 35, len(count))
    assert value_probes(X, noise, groups, max_iter=30).rmse_test > 8


def test_bad_inputs():
    X, count, _ = data()
    with pytest.raises(UserError, match="at least 2 documents"):
        ridge_probe(X, count, np.zeros(len(count)))
