"""The sweep's targets: what a training setting must show to be a candidate for the study's default.

The helix-and-twist sweep (:mod:`linebreak.study.sweep`) records one row of numbers per run and checks each
row against :data:`TARGETS` (the targets of issue #7, set from Gurnee et al. 2025's Haiku numbers), then
ranks the runs (:func:`linebreak.study.sweep.score`). Each target reads a row as ``linebreak sweep`` writes it
(a plain dict, also for rows of an earlier ``sweep.json``); a number that was not measured (None) fails it.
"""

from __future__ import annotations

from collections.abc import Callable

from linebreak.rules.probe import PC1_SHARE_MAX, SIGN_CHANGES_MIN, TOP6_SHARE_MIN

# The geometry targets are the probe findings' own pass marks (linebreak.rules.probe, with their reasons):
# most of the per-count means' variance in 6 PCs, not all of it in PC1 (a ramp), and ringing.
TARGETS: dict[str, Callable[[dict], bool]] = {
    f"top6 >= {TOP6_SHARE_MIN:.2f}": lambda r: r["top6"] is not None and r["top6"] >= TOP6_SHARE_MIN,
    f"PC1 < {PC1_SHARE_MAX:.2f}": lambda r: r["pc1"] is not None and r["pc1"] < PC1_SHARE_MAX,
    f"sign changes >= {SIGN_CHANGES_MIN}": lambda r: r["sign_changes"] is not None
    and r["sign_changes"] >= SIGN_CHANGES_MIN,
    # the QK twist verdict of linebreak.qk (its own rules) on the run's best head
    "QK twist verdict": lambda r: bool(r["qk_passes"]),
    # some head's attention moves with the key's own line length when width and count are fixed
    "key-side comparison": lambda r: bool(r["key_side_moves"]),
}

# A run is a candidate for the default only if its model does the task: geometry of a model that has not
# learned to break lines says nothing about how line breaking is done. 0.9 of the achievable newline
# information (the model stage's info_captured, against the Bayes posterior) is "does the task".
MIN_INFO_FOR_DEFAULT = 0.9
