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

# ---- the ringing gate (linebreak.probe.ringing; docs/toys.md): when a ringing number can mean something
# mean cosine of consecutive (centred) centroids: issue 19's example value. A helix with a period of T counts
# has lag-1 cosine ~ cos(2 pi / T), so 0.8 still admits T >= 10; independent noise reads ~0
RINGING_SMOOTH_MIN = 0.8
# a lobe must reach a mean cosine of 0.1: above the spread of a mean of >= 3 cosines of random directions
# in a few dozen dimensions (1 / sqrt(3 * 32) ~ 0.1), well below the 0.3-1 lobes of a helix
RINGING_DEAD_ZONE = 0.1
# lags with fewer pairs than this are left out of the profile, as in manifold.ringing
RINGING_MIN_PAIRS = 3
# the held-out count-probe R^2 that counts as "a working probe" when one is given (issue 19 asks for one)
RINGING_PROBE_R2_MIN = 0.5
