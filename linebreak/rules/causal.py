"""Thresholds of the causal stage: what its analysis calls specific, and what its findings check.

Each value is used by :mod:`linebreak.causal` and :mod:`linebreak.study.findings.causal`, never retyped there.
"""

from __future__ import annotations

from linebreak.rules.anchors import ANCHORS

# Newline loss must rise >= 5x more than other-token loss when the count subspace is ablated: linebreak's
# reading of the paper's "hurts loss only on newlines" (the anchor ablation_newline_ratio gives the source).
ABLATION_NEWLINE_RATIO = ANCHORS["ablation_newline_ratio"][0]

# Count patching moves P(newline) with the shift when their rank correlation across shifts is >= 0.8:
# linebreak's threshold for "a monotone trend" (the paper shows the shift's effect without a number).
PATCHING_SPEARMAN = 0.8

# A head ablation is newline-specific when newline loss rises by more than twice the rise of other-token
# loss (and rises at all): a factor that a head shared by every token would not reach.
NEWLINE_SPECIFIC_FACTOR = 2.0

# Smallest loss change (nats) used as a denominator: below it a ratio or a share is undefined, not huge.
# Loss sums are float64 over ~10^4 tokens of float32 log-probabilities; 1e-9 nats is far below their noise.
MIN_LOSS_CHANGE = 1e-9

# Key ablation of a table head (linebreak.causal.columns): its cell-start keys resampled from the *same* column
# "keep most of its effect" when the pad loss rises by at most half of what removing the head costs ...
COLUMN_SAME_MAX_SHARE = 0.5
# ... and resampled from *other* columns "remove it" when the rise is at least half of the head's.
COLUMN_OTHER_MIN_SHARE = 0.5
