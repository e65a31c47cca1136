"""Means per label value: the one implementation every stage uses (centroids, per-count means, effects).

Sums are accumulated with ``np.add.at`` in float64, in the order the rows arrive, so a stage that streams
batches through :class:`ValueSums` gets the same bits as one that sums all rows at once in the same order.
"""

from __future__ import annotations

import numpy as np


class ValueSums:
    """Streaming per-value sums and counts: ``sums [n_values, *shape]``, ``counts [n_values]``."""

    def __init__(self, n_values: int, shape: tuple[int, ...] = ()):
        self.sums = np.zeros((n_values, *shape))
        self.counts = np.zeros(n_values)

    def add(self, values: np.ndarray, X: np.ndarray) -> None:
        """Add rows ``X [N, *shape]`` under their integer labels ``values [N]``."""
        np.add.at(self.sums, values, X)
        np.add.at(self.counts, values, 1)

    def means(self, min_n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(values, means)`` over the values seen at least ``min_n`` times."""
        return kept_means(self.sums, self.counts, min_n)


def kept_means(sums: np.ndarray, counts: np.ndarray, min_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Values (indices) with ``counts >= min_n`` and their means ``sums[v] / counts[v]``."""
    keep = counts >= min_n
    return np.nonzero(keep)[0], sums[keep] / counts[keep].reshape(-1, *([1] * (sums.ndim - 1)))


def group_means(X: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    """Mean of the rows of ``X`` per group ``0..n-1`` (a group with no rows gets zeros)."""
    sums = np.zeros((n, X.shape[1]))
    np.add.at(sums, groups, X)
    return sums / np.maximum(np.bincount(groups, minlength=n), 1)[:, None]
