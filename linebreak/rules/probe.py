"""Thresholds of the probe stage's findings: when the count probe and the count manifold "agree with the paper".

The literature values themselves are in :mod:`linebreak.rules.anchors` (``count_probe_r2``, ``top6_pca_share``,
``ringing_sign_changes``); these are the pass marks this repo applies to its own, much smaller model.
"""

from __future__ import annotations

# held-out R^2 of the linear count probe: Gurnee et al. 2025 report 0.985; 0.95 leaves room for a small model
# while still meaning "the count is linearly readable"
COUNT_PROBE_R2_MIN = 0.95
# share of the per-count means' variance in the top 6 PCs: the paper's 0.95, relaxed to 0.9 so that a curve
# that is low-dimensional but noisier (fewer tokens per count than the paper's) still counts as one
TOP6_SHARE_MIN = 0.9
# largest share PC1 may take: above it the "manifold" is essentially a line (a ramp along the count), which
# satisfies the top-6 share trivially without any curvature (the helix needs variance beyond PC1)
PC1_SHARE_MAX = 0.7
# sign changes of the similarity-by-lag profile: positive, negative, positive again = 2 (a straight line
# gives 1); Gurnee et al. 2025's ringing
SIGN_CHANGES_MIN = 2
