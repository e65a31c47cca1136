"""The qk stage's rules: when a head's QK circuit "twists count onto width", and when its attention "moves with
the key".

The twist thresholds were set before any trained model was looked at and are not tuned to pass (docs/qk.md,
"The verdict"); :func:`linebreak.qk.twist.thresholds` writes them into every result under
``verdict.thresholds``. The key-side thresholds decide :func:`linebreak.qk.attention.key_side_test`. The
findings (:mod:`linebreak.study.findings.qk`) judge against the same names.
"""

from __future__ import annotations

# ---- the twist verdict (linebreak.qk.twist.line_checks / head_verdict) ----------------------------------------
# Gurnee et al. 2025 find cos ~ 1 through a boundary head (~0.25 in the raw stream); 0.8 asks for "clearly high".
MIN_MAX_COS = 0.8
# k*(i) = slope * i + intercept: the offset line must run parallel to the diagonal (a width tracks its count).
SLOPE_RANGE = (0.8, 1.25)
# ... and be a clean line: below this the per-row argmax scatters and no single offset describes the head.
MIN_R2 = 0.8
# median eps = k* - i must be small and positive: the count sits just below the width it is compared with.
OFFSET_RANGE = (0.5, 20.0)
# rows whose argmax is the first or last width: a monotone (pinned) score, not a twist; at most a quarter.
MAX_EDGE_FRACTION = 0.25
# the row-max alignment must beat the identity map (raw stream) and the random control by this much.
MIN_GAIN = 0.1

# ---- the key-side comparison test (linebreak.qk.attention.key_side_test) --------------------------------------
# Attention "moves with the key" when, with width and count held fixed, the earlier line's length explains at
# least this share of the attention variance beyond what shuffled lengths explain (the exploratory runs measured
# within-group correlations of -0.07..+0.09 for heads gated by the query alone) ...
KEY_SIDE_MIN_EXCESS = 0.05
# ... and no more than this fraction of within-group shuffles explain as much (a permutation p-value).
KEY_SIDE_MAX_P = 0.01
# Within-group shuffles that measure the null: 199 gives p-values in steps of 1/200, fine enough for 0.01.
KEY_SIDE_SHUFFLES = 199
# (width, count) groups with fewer tokens than this are left out: a group of one has no variance to explain.
KEY_SIDE_MIN_GROUP = 4
# The key-side finding agrees when at least this many heads move with the key (the paper's boundary heads do).
KEY_SIDE_MIN_HEADS = 1

# ---- the key-shift test of a table head (linebreak.qk.key_shift) ---------------------------------------------
# A head "peaks at the key's column" when a key moved half the narrowest column gap loses at least this much logit
# (against the mean of the two directions, so a ramp's change cancels). 0.5 nat keeps at most e^-0.5 = 0.61 of
# the key's attention odds: the head tells a key at its column from one halfway to the next. Set before any head
# was measured with it.
KEY_SHIFT_MIN_PEAK = 0.5
# Resamples of the documents for the interval of the peak; its lower 2.5 % point must be above zero.
KEY_SHIFT_BOOTSTRAP = 200
# A key track rings (linebreak.qk.key_track) when, in at least half of the documents whose key was moved, its
# curve rings behind the ringing gate where the random-init control's track of the same edits does not: a
# majority of documents, so that one smooth lucky track cannot carry the claim. Set before any track was read.
KEY_TRACK_MIN_SHARE = 0.5
# The count window a head accepts (linebreak.qk.key_track.band): the shifts of a key track whose mean logit stays
# within 1 nat of its top, where the key keeps at least e^-1 = 0.37 of its best attention odds. A description of
# the profile, not a verdict; set after the overflow tables (docs/research/tables.md) showed flat-topped profiles
# that the +-D peak reads as ~0.
KEY_TRACK_BAND_NATS = 1.0

# ---- which published picture the comparison matches (linebreak.study.findings.qk) ----------------------------
# A twist puts the comparison in the interaction of count and width; an addition puts it in a count effect plus
# a width effect. "Mostly additive" is the plain majority: the additive part carries more than half of the
# variance of the head's mean logit over the (count, width) grid.
ADDITIVE_MIN_SHARE = 0.5
