"""The UMAP view: seeded (same seed, same embedding), faithful to local structure, imported only when asked."""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("umap")


def test_umap_is_lazy():
    code = ("import sys, linebreak.probe.manifold, linebreak.probe.layers, linebreak.plots.layers; print"
            "('umap' in sys.modules, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_umap_seeded_and_keeps_neighbours():
    from sklearn.manifold import trustworthiness

    from linebreak.probe.manifold import umap_embedding

    rng = np.random.default_rng(0)
    c = np.repeat(np.arange(60), 4).astype(float)
    helix = np.stack([np.cos(2 * np.pi * c / 20), np.sin(2 * np.pi * c / 20), c / 30], axis=1)
    X = helix @ rng.standard_normal((3, 16)) + 0.02 * rng.standard_normal((len(c), 16))
    a = umap_embedding(X, n_components=3, n_neighbors=10, seed=0)
    b = umap_embedding(X, n_components=3, n_neighbors=10, seed=0)
    assert a.shape == (len(c), 3) and np.array_equal(a, b)
    assert trustworthiness(X, a, n_neighbors=10) > 0.9
